"""Django admin for Pi payments: read-only money, state changes only through the services.

Staff browse every payment with its audit log and every Pi user; they change a payment only
with the actions of :mod:`.actions` (cancel, sync, complete) and :mod:`.refunds` (refund),
which call :mod:`django_pi_payments.services` once per payment and report one message per
payment.
"""

from .payments import PaymentAdmin, PaymentEventInline
from .pi_users import PiUserAdmin

__all__ = ["PaymentAdmin", "PaymentEventInline", "PiUserAdmin"]
