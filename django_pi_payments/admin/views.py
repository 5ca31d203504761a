"""Admin pages that are not a model's: the read-only Pi configuration; a guard of the lists."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from ..conf import SECRET_SETTINGS, pi_settings
from ..models import Payment


def display_setting(value: Any) -> str:
    """A setting's value as text: dotted paths for callables, an empty string for ``None``."""
    if value is None:
        return ""
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return f"{value.__module__}.{name}"
    return str(value)


def refuse_nul_in_query(request: HttpRequest) -> None:
    """Raise :class:`IncorrectLookupParameters` when the query of a list page holds a NUL
    character, which PostgreSQL refuses in a text value (a 500 from a filter or a search).

    Django's list page answers it as any lookup it cannot use: a redirect to every row.
    """
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise IncorrectLookupParameters


def configuration_view(
    modeladmin: admin.ModelAdmin[Payment], request: HttpRequest
) -> TemplateResponse:
    """Render ``pi_settings.redacted()``: the API key and the wallet seed show as ``abcd…wxyz``.

    Open to whoever may see payments. Only the redacted settings reach the template, so no
    secret can leak through it.
    """
    if not modeladmin.has_view_or_change_permission(request):
        raise PermissionDenied
    settings_rows = [
        (name, display_setting(value), name in SECRET_SETTINGS)
        for name, value in pi_settings.redacted().items()
    ]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Pi configuration"),
        "subtitle": None,
        "opts": modeladmin.opts,
        "settings_rows": settings_rows,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/pi_payments/configuration.html", context)
