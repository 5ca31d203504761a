"""App configuration for django_pi_payments (label ``pi_payments``)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PiPaymentsConfig(AppConfig):
    """Registers the system checks when Django starts."""

    name = "django_pi_payments"
    label = "pi_payments"
    verbose_name = _("Pi Network payments")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
