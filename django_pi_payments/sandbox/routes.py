"""The route table of the sandbox and the error-to-response conversion.

Route ids of ``platform`` and ``horizon`` routes are the ones faults target
(``faults.API_ROUTE_IDS``); ``control`` routes are never logged, delayed or faulted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from . import api, control
from .errors import HorizonProblem, SandboxError
from .messages import Request, Response, json_response
from .state import SandboxState

__all__ = ["ROUTES", "Route", "resolve", "run"]

logger = logging.getLogger(__name__)

Handler = Callable[[SandboxState, Request], Response]
Kind = Literal["platform", "horizon", "control"]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """One route: its id, method, path template and handler."""

    route_id: str
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Literal parts are escaped ("pi-sdk.js" must not match "pi-sdkXjs"); {name} is one segment.
        parts = _PARAM.split(self.template.rstrip("/"))
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(f"{regex}/?"))

    @property
    def kind(self) -> Kind:
        """``platform`` (``/v2``), ``horizon`` or ``control`` (``/sandbox``)."""
        if self.template.startswith("/v2/"):
            return "platform"
        return "horizon" if self.template.startswith("/horizon") else "control"


ROUTES: tuple[Route, ...] = (
    Route("me", "GET", "/v2/me", api.me),
    Route("create_payment", "POST", "/v2/payments", api.create_payment),
    Route(
        "incomplete_server_payments",
        "GET",
        "/v2/payments/incomplete_server_payments",
        api.incomplete_server_payments,
    ),
    Route("get_payment", "GET", "/v2/payments/{identifier}", api.get_payment),
    Route("approve", "POST", "/v2/payments/{identifier}/approve", api.approve),
    Route("complete", "POST", "/v2/payments/{identifier}/complete", api.complete),
    Route("cancel", "POST", "/v2/payments/{identifier}/cancel", api.cancel),
    Route("horizon_root", "GET", "/horizon/", api.horizon_root),
    Route("horizon_submit", "POST", "/horizon/transactions", api.horizon_submit),
    Route("horizon_transaction", "GET", "/horizon/transactions/{txid}", api.horizon_transaction),
    Route(
        "horizon_operations",
        "GET",
        "/horizon/transactions/{txid}/operations",
        api.horizon_operations,
    ),
    Route("horizon_account", "GET", "/horizon/accounts/{account_id}", api.horizon_account),
    Route(
        "horizon_account_transactions",
        "GET",
        "/horizon/accounts/{account_id}/transactions",
        api.horizon_account_transactions,
    ),
    Route("horizon_fee_stats", "GET", "/horizon/fee_stats", api.horizon_fee_stats),
    Route("horizon_ledgers", "GET", "/horizon/ledgers", api.horizon_ledgers),
    Route("sandbox_reset", "POST", "/sandbox/reset", control.reset),
    Route("sandbox_config", "GET", "/sandbox/config", control.config),
    Route("sandbox_config_update", "POST", "/sandbox/config", control.update_config),
    Route("sandbox_users", "GET", "/sandbox/users", control.list_users),
    Route("sandbox_user_create", "POST", "/sandbox/users", control.create_user),
    Route("sandbox_token_create", "POST", "/sandbox/tokens", control.create_token),
    Route("sandbox_token_expire", "POST", "/sandbox/tokens/expire", control.expire_token),
    Route("sandbox_token_revoke", "POST", "/sandbox/tokens/revoke", control.revoke_token),
    Route("sandbox_payments", "GET", "/sandbox/payments", control.list_payments),
    Route("sandbox_payment_create", "POST", "/sandbox/payments", control.create_payment),
    # Before sandbox_payment: "incomplete" is not a payment identifier.
    Route(
        "sandbox_incomplete_payment",
        "GET",
        "/sandbox/payments/incomplete",
        control.incomplete_payment,
    ),
    Route("sandbox_payment", "GET", "/sandbox/payments/{identifier}", control.payment),
    Route(
        "sandbox_transaction",
        "POST",
        "/sandbox/payments/{identifier}/transaction",
        control.submit_transaction,
    ),
    Route(
        "sandbox_user_cancel",
        "POST",
        "/sandbox/payments/{identifier}/user_cancel",
        control.user_cancel,
    ),
    Route(
        "sandbox_expire", "POST", "/sandbox/payments/{identifier}/expire", control.expire_payment
    ),
    Route("sandbox_account", "POST", "/sandbox/accounts", control.put_account),
    Route("sandbox_ledger", "GET", "/sandbox/ledger", control.ledger),
    Route("sandbox_fault_add", "POST", "/sandbox/faults", control.add_fault),
    Route("sandbox_faults", "GET", "/sandbox/faults", control.faults),
    Route("sandbox_faults_clear", "DELETE", "/sandbox/faults", control.clear_faults),
    Route("sandbox_calls", "GET", "/sandbox/calls", control.calls),
    Route("sandbox_calls_clear", "DELETE", "/sandbox/calls", control.clear_calls),
    Route("sandbox_stats", "GET", "/sandbox/stats", control.stats),
    Route("sandbox_pi_sdk_js", "GET", "/sandbox/pi-sdk.js", control.pi_sdk_js),
)


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """Return the route of ``method path`` and its path parameters.

    Raises ``not_found`` / ``method_not_allowed`` (a 404 problem under ``/horizon``).
    """
    path_matched = False
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method == method:
            return route, match.groupdict()
        path_matched = True
    if path.startswith("/horizon") and not path_matched:
        raise HorizonProblem(404, "The resource at the url requested was not found.")
    if path_matched:
        raise SandboxError("method_not_allowed", f"{method} is not allowed on {path}.")
    raise SandboxError("not_found", f"No sandbox route for {path}.")


def error_response(error: Exception, base_url: str) -> Response:
    """Render a :class:`SandboxError` or :class:`HorizonProblem` (anything else: a JSON 500)."""
    if isinstance(error, SandboxError):
        return json_response(error.body(base_url), error.status)
    if isinstance(error, HorizonProblem):
        return json_response(error.body(), error.status)
    logger.exception("sandbox handler failed", exc_info=error)
    internal = SandboxError("sandbox_internal_error", repr(error))
    return json_response(internal.body(base_url), internal.status)


def run(route: Route, state: SandboxState, request: Request) -> Response:
    """Call the route's handler, turning errors into responses."""
    try:
        return route.handler(state, request)
    except Exception as error:  # every failure becomes an HTTP answer
        return error_response(error, request.base_url)
