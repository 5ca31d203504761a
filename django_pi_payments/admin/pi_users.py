"""The read-only ``PiUser`` admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest

from ..models import PiUser
from .views import refuse_nul_in_query

if TYPE_CHECKING:
    PiUserAdminBase = admin.ModelAdmin[PiUser]
else:  # Django's admin classes are not subscriptable at run time.
    PiUserAdminBase = admin.ModelAdmin


@admin.register(PiUser)
class PiUserAdmin(PiUserAdminBase):
    """Pi users as last verified through ``/me``; they are created and updated by sign-in only."""

    list_display = ("uid", "username", "scopes", "token_valid_until", "user")
    search_fields = ("=uid", "username")
    list_select_related = ("user",)
    fields = ("uid", "username", "scopes", "token_valid_until", "user", "created_at", "updated_at")
    readonly_fields = fields
    ordering = ("username", "uid")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Pi users come from verified access tokens, never from a form."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: PiUser | None = None) -> bool:
        """What Pi reported about a user is never edited by hand."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PiUser | None = None) -> bool:
        """Never on these pages: a Pi user deleted alone would come back at its next sign-in,
        linked to a new site user. Elsewhere (deleting its site user, which deletes it too), with
        Django's ``pi_payments.delete_piuser``: its payments stay, with its Pi uid."""
        match = request.resolver_match
        prefix = f"{self.opts.app_label}_{self.opts.model_name}_"
        if match is None or match.url_name is None or match.url_name.startswith(prefix):
            return False
        return super().has_delete_permission(request, obj)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Django's list, after :func:`~.views.refuse_nul_in_query`."""
        refuse_nul_in_query(request)
        return super().get_changelist_instance(request)
