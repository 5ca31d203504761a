"""Which web pages and host names may use the sandbox: its defence against the browser.

The sandbox has no authentication on its control API and a well-known default API key, and it
listens on loopback, where any web page a developer visits can reach it. Two checks keep those
pages out, for every route:

* ``Origin``: a browser names the page's origin on every cross-origin call and on every POST
  (an HTML form posted to ``/sandbox/reset`` too). Pages on loopback (``http://127.0.0.1:8000``,
  ``http://localhost:3000``, ``http://[::1]:8000``, ``http://shop.localhost``) are allowed, and
  so are the origins the operator lists (``*``: any); any other origin, ``null`` included, is
  refused with 403 ``forbidden_origin`` before anything happens. A request without ``Origin``
  (``requests``, ``curl``, a ``<script src>``) is not a cross-origin page's.
* ``Host``: DNS rebinding makes ``evil.example`` resolve to 127.0.0.1, so that a page of that
  site calls the sandbox as its own origin, without ``Origin`` on a GET. Its requests carry
  ``Host: evil.example``; the sandbox answers only host names that cannot be rebound (IP
  addresses, ``localhost``, ``*.localhost``) and the names the operator lists (``*``: any),
  otherwise 403 ``forbidden_host``. A proxy request (absolute URI) is exempt: no web page can
  send one.

Answers to an allowed ``Origin`` carry ``Access-Control-Allow-Origin`` with that origin and
``Vary: Origin``.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from .errors import SandboxError

__all__ = ["AccessPolicy", "normalize_origin"]

ANY = "*"
NULL_ORIGIN = "null"
# Refused origins and hosts are logged once each; at most this many are remembered.
MAX_REMEMBERED = 256


def _is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_name(value: str) -> str | None:
    """The lowercased host name of a ``Host`` header value (``name``, ``name:port``,
    ``[v6]:port``), or ``None`` if it is not one."""
    try:
        parts = urlsplit(f"//{value.strip()}")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname or None


def normalize_origin(origin: str) -> str:
    """Return ``origin`` as browsers send it (``scheme://host[:port]``, lowercased), ``*`` or
    ``null``; raise ``ValueError`` for anything else (a path, no scheme, a bad port)."""
    text = origin.strip().lower().rstrip("/")
    if text in (ANY, NULL_ORIGIN):
        return text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{origin!r} is not an origin: its port is invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin!r} is not an origin such as http://192.168.1.20:8000")
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        raise ValueError(f"{origin!r} is not an origin: it has more than scheme, host and port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class AccessPolicy:
    """The origins and host names the sandbox answers (see the module docstring).

    ``allowed_origins`` adds origins (``scheme://host[:port]``, ``null`` or ``*``) to the
    loopback ones; ``allowed_hosts`` adds host names (``*``: any) to the IP addresses and
    ``localhost`` names. Raises ``ValueError`` for an allowed origin that is not one.
    """

    def __init__(self, allowed_origins: Iterable[str] = (), allowed_hosts: Iterable[str] = ()):
        self.allowed_origins = frozenset(normalize_origin(origin) for origin in allowed_origins)
        self.allowed_hosts = frozenset(host.strip().lower() for host in allowed_hosts)
        self._refused: set[str] = set()
        self._refused_lock = threading.Lock()

    def origin_allowed(self, origin: str) -> bool:
        """Tell whether a page of ``origin`` (an ``Origin`` header value) may call the sandbox."""
        if ANY in self.allowed_origins:
            return True
        try:
            normalized = normalize_origin(origin)
        except ValueError:
            return False
        if normalized in self.allowed_origins:
            return True
        hostname = urlsplit(normalized).hostname
        return normalized != NULL_ORIGIN and hostname is not None and _is_loopback_name(hostname)

    def host_allowed(self, host: str) -> bool:
        """Tell whether a request with ``Host: host`` may be answered."""
        if ANY in self.allowed_hosts:
            return True
        name = _host_name(host)
        if name is None:
            return False
        return _is_ip(name) or _is_loopback_name(name) or name in self.allowed_hosts

    def check(self, origin: str | None, host: str | None, *, proxied: bool) -> None:
        """Raise ``forbidden_origin`` / ``forbidden_host`` for a request the sandbox refuses."""
        if origin is not None and not self.origin_allowed(origin):
            raise SandboxError(
                "forbidden_origin",
                f"The Pi sandbox does not answer web pages of {origin[:200]}. Start it with "
                f"--allow-origin {origin[:200]} if that page is yours.",
            )
        if host is not None and not proxied and not self.host_allowed(host):
            name = _host_name(host) or host[:200]
            raise SandboxError(
                "forbidden_host",
                f"The Pi sandbox does not answer the host name {name}. Start it with "
                f"--allow-host {name} if you reach it by that name.",
            )

    def first_refusal(self, key: str) -> bool:
        """Remember a refused origin or host; tell whether it is the first time (to log it)."""
        with self._refused_lock:
            if key in self._refused or len(self._refused) >= MAX_REMEMBERED:
                return False
            self._refused.add(key)
            return True
