"""Signals sent after a state change has been committed, exactly once per transition.

Receivers get ``payment=`` (a :class:`~django_pi_payments.models.Payment`) or, for
``pi_user_authenticated``, ``pi_user=`` (a :class:`~django_pi_payments.models.PiUser`). A shop
fulfils an order on ``payment_completed``.

``payment_refunded`` is sent with the ``payment_completed`` of a refund (on commit, once), when
the refund has been paid: ``payment=`` is the refund (an app-to-user payment made by
``services.refund``) and ``original=`` the user-to-app payment it refunds
(``payment.refund_of``). A refund may be partial: compare the amounts.
"""

from django.dispatch import Signal

payment_approved = Signal()
payment_completed = Signal()
payment_cancelled = Signal()
payment_refunded = Signal()
pi_user_authenticated = Signal()
