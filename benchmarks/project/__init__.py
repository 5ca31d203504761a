"""The Django project the benchmarks serve with gunicorn: the app at ``pi_payment/``."""
