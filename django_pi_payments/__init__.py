"""Pi Network payments for Django."""

__version__ = "0.1.0"
