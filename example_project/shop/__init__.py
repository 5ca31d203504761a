"""A small shop that sells products for Pi through django-pi-payments."""
