"""The ``Payment`` admin and its read-only ``PaymentEvent`` inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from ..conf import NETWORKS
from ..models import Payment, PaymentEvent
from .actions import cancel_on_pi, complete_verified, sync_from_pi
from .refunds import refund_to_payer
from .views import configuration_view, refuse_nul_in_query

if TYPE_CHECKING:
    PaymentEventInlineBase = admin.TabularInline[PaymentEvent, Payment]
    PaymentAdminBase = admin.ModelAdmin[Payment]
else:  # Django's admin classes are not subscriptable at run time.
    PaymentEventInlineBase = admin.TabularInline
    PaymentAdminBase = admin.ModelAdmin

# The permission that lets staff cancel a payment at Pi (declared on ``Payment.Meta``).
CANCEL_PERMISSION = "pi_payments.cancel_payment"
# The permission that lets staff send refunds from the app wallet (declared on ``Payment.Meta``).
REFUND_PERMISSION = "pi_payments.refund_payment"
# Syncing and completing change a payment's state (and may fulfil an order through
# ``payment_completed``), so they need the model's change permission, although no field of the
# change form can ever be edited.
OPERATE_PERMISSION = "pi_payments.change_payment"
# The most audit events a payment's page lists, newest first (the complete callback audits each
# transaction id a payer posts that is not the payment's, however many).
MAX_EVENTS_SHOWN = 100

View = TypeVar("View", bound=Callable[..., HttpResponse])


class NetworkFilter(admin.SimpleListFilter):
    """The two Pi networks. Django's filter for a field without choices lists the values found,
    reading the network of every payment on each page of the list."""

    title = _("network")
    parameter_name = "network__exact"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        """Pi Network and Pi Testnet."""
        return [(name, name) for name in NETWORKS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The payments of the chosen network."""
        value = self.value()
        return queryset.filter(network=value) if value else queryset


def non_atomic_everywhere(view: View) -> View:
    """:func:`transaction.non_atomic_requests` on every configured database."""
    for alias in connections:
        transaction.non_atomic_requests(using=alias)(view)
    return view


class PaymentEventInline(PaymentEventInlineBase):
    """The payment's audit log, newest first; nobody adds, edits or deletes an event."""

    model = PaymentEvent
    fields = ("created_at", "kind", "source", "from_status", "to_status", "detail")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """Whoever may see a payment may see its audit log."""
        return request.user.has_perm("pi_payments.view_payment") or request.user.has_perm(
            OPERATE_PERMISSION
        )

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """Events are written by the services only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """The audit log is never edited."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """The audit log is never deleted."""
        return False


@admin.register(Payment)
class PaymentAdmin(PaymentAdminBase):
    """Every payment, read-only; cancel, sync, complete and refund go through the services.

    The change form shows every field read-only and cannot be saved, payments cannot be added or
    deleted (they mirror Pi's records and carry money), and the bulk delete action is gone.
    """

    list_display = (
        "identifier",
        "payer",
        "amount",
        "direction",
        "status",
        "network",
        "created_at",
        "completed_at",
    )
    list_filter = ("status", "direction", NetworkFilter, "created_at")
    search_fields = ("=identifier", "=txid", "=user_uid", "pi_user__username")
    list_select_related = ("pi_user",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = (cancel_on_pi, sync_from_pi, complete_verified, refund_to_payer)
    inlines = (PaymentEventInline,)
    fieldsets = (
        (
            None,
            {"fields": ("identifier", "status", "direction", "amount", "memo", "network")},
        ),
        (_("Parties"), {"fields": ("pi_user", "user_uid", "from_address", "to_address")}),
        (_("Transaction"), {"fields": ("txid", "refund_of")}),
        (
            _("Timeline"),
            {
                "fields": (
                    "pi_created_at",
                    "approved_at",
                    "completed_at",
                    "cancelled_at",
                    "last_synced_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (_("Pi data"), {"fields": ("metadata", "raw"), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "identifier",
        "status",
        "direction",
        "amount",
        "memo",
        "network",
        "pi_user",
        "user_uid",
        "from_address",
        "to_address",
        "txid",
        "refund_of",
        "pi_created_at",
        "approved_at",
        "completed_at",
        "cancelled_at",
        "last_synced_at",
        "created_at",
        "updated_at",
        "metadata",
        "raw",
    )

    @admin.display(description=_("user"), ordering="pi_user__username")
    def payer(self, payment: Payment) -> str:
        """The Pi username of the payer, or the Pi uid when no Pi user is linked."""
        if payment.pi_user is not None:
            return str(payment.pi_user)
        return payment.user_uid

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Payments are created from Pi's records by the services, never by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        """No field of a payment is ever edited; state changes go through the actions."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        """A payment is a money record with an audit log: it is never deleted."""
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """May the user run "Cancel on Pi Network"?"""
        return request.user.has_perm(CANCEL_PERMISSION)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        """May the user run "Refund to the payer"?"""
        return request.user.has_perm(REFUND_PERMISSION)

    def has_sync_permission(self, request: HttpRequest) -> bool:
        """May the user run "Sync from Pi Network"?"""
        return request.user.has_perm(OPERATE_PERMISSION)

    def has_complete_permission(self, request: HttpRequest) -> bool:
        """May the user run "Complete verified payments"?"""
        return request.user.has_perm(OPERATE_PERMISSION)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Django's list, after :func:`~.views.refuse_nul_in_query`."""
        refuse_nul_in_query(request)
        return super().get_changelist_instance(request)

    def get_formset_kwargs(
        self,
        request: HttpRequest,
        obj: Payment,
        inline: admin.options.InlineModelAdmin[Any, Payment],
        prefix: str,
    ) -> dict[str, Any]:
        """The payment's audit log lists its newest :data:`MAX_EVENTS_SHOWN` events; with more,
        its heading says how many there are."""
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if not isinstance(inline, PaymentEventInline) or obj.pk is None:
            return kwargs
        total = obj.events.count()
        if total > MAX_EVENTS_SHOWN:
            newest = obj.events.order_by(*PaymentEventInline.ordering).values_list("pk", flat=True)
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=list(newest[:MAX_EVENTS_SHOWN]))
            # The admin makes its inlines anew for each request: this heading is this page's.
            inline.verbose_name_plural = _("payment events: the newest %(shown)d of %(total)d") % {
                "shown": MAX_EVENTS_SHOWN,
                "total": total,
            }
        return kwargs

    @non_atomic_everywhere
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Django's list page and its actions, never inside an ``ATOMIC_REQUESTS`` transaction:
        "Refund to the payer" sends app-to-user payments, which must commit each step as it is
        done (``in_transaction``), and every other action commits per payment too."""
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        """The default URLs plus ``configuration/``, the read-only Pi settings page."""
        configuration = path(
            "configuration/",
            self.admin_site.admin_view(self.configuration_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_configuration",
        )
        return [configuration, *super().get_urls()]

    def configuration_view(self, request: HttpRequest) -> TemplateResponse:
        """Show the effective ``PI_PAYMENTS`` settings with every secret redacted."""
        return configuration_view(self, request)
