"""The HTTP server of the sandbox: keep-alive, ``TCP_NODELAY``, one write per response.

:class:`SandboxServer` binds at construction (so :attr:`SandboxServer.url` is known at once), then
either runs in a daemon thread (:meth:`SandboxServer.start`) or blocks
(:meth:`SandboxServer.serve_forever`). ``/v2`` and ``/horizon`` calls are counted, logged, delayed
by ``latency_ms`` and subject to faults; ``/sandbox`` control calls are not.

``latency_ms`` plays the round trip between an app and Pi: a call acts on the sandbox's state as
soon as it arrives, and its answer leaves ``latency_ms`` after the arrival. The sandbox's own work
is part of that round trip, as a remote server's is: a client waits ``latency_ms`` plus its own
overhead, not plus the simulator's.

Every request passes :class:`~.access.AccessPolicy` first: web pages of other origins than
loopback ones and the ``allowed_origins``, and ``Host`` names that DNS rebinding could point here
(other than the ``allowed_hosts``), get a 403 and change nothing. Answers under ``/sandbox/``
(the control API and ``/sandbox/pi-sdk.js``) to an allowed page carry
``Access-Control-Allow-Origin: <its origin>``, and ``OPTIONS`` preflights there are granted, so
that the ``window.Pi`` of a shop page on another (loopback) origin can drive the control API.

A request line in absolute form (an HTTP proxy request, e.g.
``GET https://api.testnet.minepi.com/accounts/G...``) is routed to the Horizon handlers, or to
the Platform API when its host is ``api.minepi.com``: run a Node ``pi-backend`` with
``HTTPS_PROXY=<sandbox url>`` to send its hard-coded Horizon traffic here. A path of the
sandbox's own (``/v2``, ``/horizon``, ``/sandbox``; no Horizon path starts so) is served as it is,
whatever the host: a client whose proxy is the sandbox still reaches the sandbox's URLs.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from .access import AccessPolicy
from .errors import SandboxError
from .faults import Fault, fault_reply
from .ids import iso_millis
from .messages import Request, Response
from .routes import Route, error_response, resolve, run
from .state import SandboxState

__all__ = ["SandboxServer"]

logger = logging.getLogger(__name__)

PLATFORM_HOST = "api.minepi.com"
CONTROL_PREFIX = "/sandbox/"
# Far above any Platform API, Horizon or control request body; a larger one is refused unread.
MAX_BODY_BYTES = 1024 * 1024
# The first path segments of the sandbox's own routes.
SANDBOX_SEGMENTS = frozenset({"v2", "horizon", "sandbox"})

# The answer to a CORS preflight of a /sandbox/ route, besides the allowed origin
# (Private-Network: Chrome asks it of pages on a LAN address that call a loopback sandbox).
PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Authorization"),
    ("Access-Control-Allow-Private-Network", "true"),
    ("Access-Control-Max-Age", "600"),
)


def _split_target(target: str) -> tuple[str, dict[str, str], bool]:
    """Return the routed path and query of a request target, and whether it is in absolute
    form (a proxy request)."""
    parts = urlsplit(target)
    path = parts.path or "/"
    absolute = parts.scheme in ("http", "https")
    if absolute and parts.hostname != PLATFORM_HOST and path.split("/")[1] not in SANDBOX_SEGMENTS:
        path = "/horizon" + path
    return path, dict(parse_qsl(parts.query)), absolute


def _auth_kind(header: str | None) -> str | None:
    word = (header or "").strip().partition(" ")[0]
    return {"Key": "key", "Bearer": "bearer"}.get(word)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: dozens of clients connecting at once (a load
    # test) overflow it, and the kernel resets the connections it could not queue.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SandboxState, access: AccessPolicy) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self.access = access
        self.base_url = ""
        self.stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (slow without DNS): skip that.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._sockets_lock:
            self._sockets.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer is routine here (timeouts, dropped faults).
        logger.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alive ones included)."""
        with self._sockets_lock:
            connections, self._sockets = list(self._sockets), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PiSandbox/1"
    server: _HTTPServer
    connection_epoch = 0
    arrived = 0.0

    def parse_request(self) -> bool:
        # The request line has just been read: the request arrived now.
        self.arrived = time.monotonic()
        return super().parse_request()

    def _wait_for_latency(self) -> None:
        """Sleep until the configured latency has passed since the request arrived."""
        latency_ms = self.server.state.config.latency_ms
        if latency_ms:
            left = self.arrived + latency_ms / 1000 - time.monotonic()
            if left > 0:
                time.sleep(left)

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        """Return the body; raise ``length_required`` (chunked or invalid length) or
        ``payload_too_large`` (over :data:`MAX_BODY_BYTES`, left unread)."""
        length_text = (self.headers.get("Content-Length") or "0").strip()
        if self.headers.get("Transfer-Encoding") or not length_text.isdecimal():
            raise SandboxError("length_required", "Send a body with a valid Content-Length.")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise SandboxError(
                "payload_too_large", f"The body is larger than {MAX_BODY_BYTES} bytes."
            )
        return self.rfile.read(length) if length > 0 else b""

    def _refused(self, proxied: bool) -> SandboxError | None:
        """The error refusing this request's ``Origin`` or ``Host`` (logged once per value)."""
        origin, host = self.headers.get("Origin"), self.headers.get("Host")
        try:
            self.server.access.check(origin, host, proxied=proxied)
        except SandboxError as error:
            if self.server.access.first_refusal(f"{error.code} {origin} {host}"):
                logger.warning("Refused a request to %s: %s", self.path[:200], error.message)
            return error
        return None

    def _handle(self) -> None:
        state, base_url = self.server.state, self.server.base_url
        path, query, proxied = _split_target(self.path)
        cors = path.startswith(CONTROL_PREFIX)
        try:
            body = self._read_body()
        except SandboxError as error:
            self.close_connection = True
            self._send(error_response(error, base_url), cors=cors)
            return
        refusal = self._refused(proxied)
        if refusal is not None:
            self._send(error_response(refusal, base_url))
            return
        if cors and self.command == "OPTIONS":
            response = Response(200, b"", "text/plain; charset=utf-8", PREFLIGHT_HEADERS)
            self._send(response, cors=True)
            return
        try:
            route, params = resolve(self.command, path)
        except Exception as error:  # not_found, method_not_allowed
            self._send(error_response(error, base_url), cors=cors)
            return
        request = Request(
            method=self.command,
            path=path,
            base_url=base_url,
            body=body,
            authorization=self.headers.get("Authorization"),
            query=query,
            params=params,
        )
        if route.kind == "control":
            self._send(run(route, state, request), cors=True)
        else:
            self._api_call(route, request)

    def _api_call(self, route: Route, request: Request) -> None:
        state = self.server.state
        self.connection_epoch = state.traffic.count_request(self.connection_epoch)
        fault = state.faults.take(route.route_id, request.method)
        if fault is None:
            response = run(route, state, request)
            self._log(route, request, response.status, False, response.status < 400)
            self._wait_for_latency()
            self._send(response)
            return
        self._wait_for_latency()
        self._apply_fault(fault, route, request)

    def _apply_fault(self, fault: Fault, route: Route, request: Request) -> None:
        state = self.server.state
        if fault.after_respond:
            run(route, state, request)  # Pi did the work; its answer is about to be lost
        self.server.stopping.wait(fault.delay_ms / 1000)
        if fault.drops:
            self._log(route, request, None, True, None)
            if fault.hang:
                self.server.stopping.wait(fault.hang_seconds)
            self._drop()
            return
        if fault.replies:
            response = fault_reply(fault, route.kind == "horizon")
            self._log(route, request, response.status, True, None)
        else:
            response = run(route, state, request)
            self._log(route, request, response.status, True, response.status < 400)
        self._send(response)

    def _log(
        self, route: Route, request: Request, status: int | None, faulted: bool, ok: bool | None
    ) -> None:
        outcome = "fault" if ok is None else ("ok" if ok else "error")
        self.server.state.traffic.log(
            time=iso_millis(time.time()),
            method=request.method,
            path=request.path,
            route=route.route_id,
            status=status,
            auth=_auth_kind(request.authorization),
            faulted=faulted,
            outcome=outcome,
        )

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            return

    def _send(self, response: Response, *, cors: bool = False) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Status"
        head = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in response.headers)
        origin = self.headers.get("Origin")
        if cors and origin is not None and self.server.access.origin_allowed(origin):
            head.append(f"Access-Control-Allow-Origin: {origin}")
            head.append("Vary: Origin")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)


class SandboxServer:
    """A running simulator of the Pi Platform API and Horizon.

    ``with SandboxServer() as sandbox:`` starts it in a daemon thread and stops it on exit;
    ``clock`` (POSIX seconds) can be injected for approval-timeout and token-expiry tests.
    ``allowed_origins`` (``scheme://host[:port]``, ``null``, ``*``) and ``allowed_hosts`` (host
    names, ``*``) widen what :class:`~.access.AccessPolicy` answers; a malformed origin raises
    ``ValueError``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = "sandbox-api-key",
        network: str = "Pi Testnet",
        latency_ms: int = 0,
        state_file: str | os.PathLike[str] | None = None,
        approval_timeout_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        access = AccessPolicy(allowed_origins, allowed_hosts)
        self.state = SandboxState(
            api_key=api_key,
            state_file=state_file,
            clock=clock,
            config={
                "network": network,
                "latency_ms": latency_ms,
                "approval_timeout_seconds": approval_timeout_seconds,
            },
        )
        self._httpd = _HTTPServer((host, port), self.state, access)
        self._httpd.base_url = self.url
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765`` (the Platform API is under ``/v2``)."""
        host, port = self._httpd.server_name, self._httpd.server_port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def horizon_url(self) -> str:
        """Base URL of the simulated Horizon."""
        return f"{self.url}/horizon"

    @property
    def api_key(self) -> str:
        """The server API key the Platform API routes accept."""
        return self.state.api_key

    @property
    def network(self) -> str:
        """The configured network passphrase."""
        return self.state.config.network

    def start(self) -> Self:
        """Serve in a daemon thread; return ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"pi-sandbox-{self._httpd.server_port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` or ``KeyboardInterrupt``."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.5)
        finally:
            self._serving = False
            self._close()

    def stop(self) -> None:
        """Stop serving, end hanging faults and close every connection."""
        self._httpd.stopping.set()
        if self._serving or self._thread is not None:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _close(self) -> None:
        self._httpd.stopping.set()
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
