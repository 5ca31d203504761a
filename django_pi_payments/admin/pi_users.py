"""The read-only ``PiUser`` admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from ..models import PiUser

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
        """A Pi user stays linked to its payments; the site user can be deactivated instead."""
        return False
