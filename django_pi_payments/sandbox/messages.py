"""Request and response values passed between the HTTP layer and the route handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .errors import SandboxError

__all__ = ["Request", "Response", "json_response"]


@dataclass(frozen=True)
class Request:
    """One HTTP request, already routed (``params`` are the path parameters)."""

    method: str
    path: str
    base_url: str
    body: bytes = b""
    authorization: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def horizon_url(self) -> str:
        """Base URL of the sandbox's Horizon."""
        return f"{self.base_url}/horizon"

    def json(self) -> Any:
        """Return the JSON body (``None`` when empty); raise ``invalid_arguments`` if malformed."""
        if not self.body.strip():
            return None
        try:
            return wire.loads(self.body)
        except ValueError as exc:
            raise SandboxError("invalid_arguments", "The request body is not valid JSON.") from exc

    def json_object(self) -> dict[str, Any]:
        """Return the JSON body as an object (``{}`` when empty)."""
        data = self.json()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise SandboxError("invalid_arguments", "The request body must be a JSON object.")
        return data


@dataclass(frozen=True)
class Response:
    """A complete HTTP response (``headers``: extra header lines, e.g. ``Cache-Control``)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(data: Any, status: int = 200) -> Response:
    """Return a JSON response (``Decimal`` values written as exact numbers)."""
    return Response(status, wire.dumps(data).encode())
