"""``PiUser``, ``Payment`` and its audit log ``PaymentEvent``.

Only :mod:`django_pi_payments.services` changes a payment's status; it asks
:meth:`Payment.can_transition` first. The transition table lives here, with the model.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class PiUser(models.Model):
    """A Pi Network user, linked to one user of the site. Access tokens are never stored."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="pi_user",
        verbose_name=_("user"),
    )
    uid = models.CharField(_("Pi uid"), max_length=64, unique=True)
    username = models.CharField(_("Pi username"), max_length=150, blank=True)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    token_valid_until = models.DateTimeField(_("token valid until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Pi user")
        verbose_name_plural = _("Pi users")

    def __str__(self) -> str:
        return self.username or self.uid

    def has_scope(self, scope: str) -> bool:
        """Whether the user granted ``scope`` at the last verification."""
        return scope in (self.scopes or [])


class PaymentStatus(models.TextChoices):
    """Where a payment stands; the last three are final."""

    CREATED = "created", _("Created")
    APPROVED = "approved", _("Approved")
    TRANSACTION_VERIFIED = "transaction_verified", _("Transaction verified")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    USER_CANCELLED = "user_cancelled", _("Cancelled by the user")


class Direction(models.TextChoices):
    """Who pays whom."""

    USER_TO_APP = "user_to_app", _("User to app")
    APP_TO_USER = "app_to_user", _("App to user")


S = PaymentStatus

FINAL_STATUSES = frozenset({S.COMPLETED, S.CANCELLED, S.USER_CANCELLED})

# Allowed moves. Forward jumps are allowed because Pi's truth can run ahead of ours (a crash
# between Pi's answer and our commit, a callback that never arrived); final states never move.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.CREATED: frozenset(
        {S.APPROVED, S.TRANSACTION_VERIFIED, S.COMPLETED, S.CANCELLED, S.USER_CANCELLED}
    ),
    S.APPROVED: frozenset({S.TRANSACTION_VERIFIED, S.COMPLETED, S.CANCELLED, S.USER_CANCELLED}),
    S.TRANSACTION_VERIFIED: frozenset({S.COMPLETED, S.CANCELLED, S.USER_CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.USER_CANCELLED: frozenset(),
}


class Payment(models.Model):
    """A Pi payment in either direction, mirrored from Pi's ``PaymentDTO``."""

    identifier = models.CharField(_("identifier"), max_length=64, unique=True)
    pi_user = models.ForeignKey(
        PiUser,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
        verbose_name=_("Pi user"),
    )
    user_uid = models.CharField(_("Pi uid"), max_length=64, db_index=True)
    direction = models.CharField(
        _("direction"), max_length=16, choices=Direction.choices, default=Direction.USER_TO_APP
    )
    amount = models.DecimalField(_("amount"), max_digits=20, decimal_places=7)
    memo = models.TextField(_("memo"), blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    from_address = models.CharField(_("from address"), max_length=56, blank=True)
    to_address = models.CharField(_("to address"), max_length=56, blank=True)
    network = models.CharField(_("network"), max_length=32)
    txid = models.CharField(_("transaction id"), max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.CREATED
    )
    pi_created_at = models.DateTimeField(_("created at Pi"), null=True, blank=True)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    last_synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    raw = models.JSONField(_("last Pi payment data"), default=dict, blank=True)
    refund_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("refund of"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ("-created_at", "-id")
        permissions = (
            ("cancel_payment", _("Can cancel payments on Pi Network")),
            ("refund_payment", _("Can refund payments")),
        )
        indexes = (
            models.Index(fields=("status", "updated_at"), name="pi_payment_status_upd"),
            # The admin's list pages: newest first, a page at a time, without sorting the table.
            models.Index(fields=("-created_at", "-id"), name="pi_payment_created"),
        )

    def __str__(self) -> str:
        return self.identifier

    @property
    def is_final(self) -> bool:
        """Completed or cancelled: nothing will change any more."""
        return self.status in FINAL_STATUSES

    def can_transition(self, to_status: str) -> bool:
        """Whether the transition table allows moving from the current status to ``to_status``."""
        return to_status in TRANSITIONS[self.status]


class EventSource(models.TextChoices):
    """What caused an event."""

    CALLBACK = "callback", _("Frontend callback")
    ADMIN = "admin", _("Admin")
    RECONCILE = "reconcile", _("Reconcile")
    API = "api", _("API")
    A2U = "a2u", _("App-to-user")


class PaymentEvent(models.Model):
    """One audit row per status transition and per failed Pi call. ``detail`` holds no secret."""

    payment = models.ForeignKey(
        Payment, on_delete=models.CASCADE, related_name="events", verbose_name=_("payment")
    )
    kind = models.CharField(_("kind"), max_length=32)
    source = models.CharField(_("source"), max_length=16, choices=EventSource.choices)
    from_status = models.CharField(_("from status"), max_length=24, blank=True)
    to_status = models.CharField(_("to status"), max_length=24, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment event")
        verbose_name_plural = _("payment events")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}→{self.to_status}"


class A2ULock(models.Model):
    """The row that app-to-user sends lock, so that one at a time creates a payment at Pi.

    Pi allows one app-to-user payment in flight per app. The transaction that creates one starts
    by updating this row: a row lock on PostgreSQL, MySQL and Oracle, the database write lock on
    SQLite, held until that transaction commits. ``taken_at`` says when a send last took it.
    """

    name = models.CharField(_("name"), max_length=32, primary_key=True)
    taken_at = models.DateTimeField(_("last taken"), null=True, blank=True)

    class Meta:
        verbose_name = _("app-to-user lock")
        verbose_name_plural = _("app-to-user locks")

    def __str__(self) -> str:
        return self.name
