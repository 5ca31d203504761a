"""Command line of the sandbox (``python -m django_pi_payments.sandbox``, ``manage.py pi_sandbox``).

:func:`add_arguments` fills any ``argparse`` parser (Django's ``CommandParser`` included);
:func:`main` parses, serves until Ctrl-C or SIGTERM and returns the exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Protocol

from .access import normalize_origin
from .errors import SandboxError
from .server import SandboxServer
from .state import StateFileError

__all__ = ["StartRefused", "add_arguments", "build_parser", "is_loopback", "main", "serve"]

MAX_PORT = 65535


class StartRefused(Exception):
    """The sandbox cannot start with these options; the message says why, and what to do."""


class Output(Protocol):
    """Where the sandbox prints its URL: a text stream or Django's ``OutputWrapper``."""

    def write(self, text: str, /) -> object:
        """Write ``text``."""

    def flush(self) -> None:
        """Flush what was written."""


def _origin(text: str) -> str:
    try:
        return normalize_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="round trip of every /v2 and /horizon call: its answer leaves this long after arrival",
    )
    parser.add_argument("--api-key", default="sandbox-api-key", help="the server API key")
    parser.add_argument("--network", default="Pi Testnet", help='"Pi Testnet" or "Pi Network"')
    parser.add_argument("--state-file", default=None, help="JSON file that keeps the state")
    parser.add_argument(
        "--approval-timeout",
        type=float,
        default=60.0,
        help="seconds before an unapproved U2A payment is cancelled (0 = never)",
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a host other than loopback"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        type=_origin,
        metavar="ORIGIN",
        help="also answer web pages of ORIGIN, e.g. http://192.168.1.20:8000 (loopback pages "
        "always; null: file:// pages; *: any page); repeatable",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for the host name NAME, e.g. a Docker service name (IP "
        "addresses and localhost always; *: any); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m django_pi_payments.sandbox``."""
    parser = argparse.ArgumentParser(
        prog="python -m django_pi_payments.sandbox",
        description="Local simulator of the Pi Platform API and the Horizon endpoints it needs.",
    )
    add_arguments(parser)
    return parser


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None, *, stdout: Output | None = None) -> int:
    """Parse ``argv``, run the sandbox until interrupted; return the exit status (2 when the
    options are refused, with the reason on stderr)."""
    try:
        return serve(build_parser().parse_args(argv), stdout=stdout)
    except StartRefused as exc:
        sys.stderr.write(f"{exc}\n")
        return 2


def _start(options: argparse.Namespace) -> SandboxServer:
    """The server for parsed ``options``, listening; :class:`StartRefused` when it cannot be."""
    host, port = options.host, options.port
    if not options.allow_remote and not is_loopback(host):
        raise StartRefused(
            f"Refusing to serve the Pi sandbox on {host}: it is not a loopback address. "
            "Pass --allow-remote if you really mean it."
        )
    if not 0 <= port <= MAX_PORT:
        raise StartRefused(f"--port must be from 0 to {MAX_PORT}.")
    try:
        return SandboxServer(
            host,
            port,
            api_key=options.api_key,
            network=options.network,
            latency_ms=options.latency_ms,
            state_file=options.state_file,
            approval_timeout_seconds=options.approval_timeout,
            allowed_origins=options.allow_origin,
            allowed_hosts=options.allow_host,
        )
    except SandboxError as exc:
        raise StartRefused(f"The sandbox refused its options: {exc}") from None
    except StateFileError as exc:
        raise StartRefused(
            f"The sandbox cannot use its state file {exc}. Pass another --state-file, "
            "or move this one away."
        ) from None
    except OSError as exc:  # the port is taken, or the address is not this host's
        reason = exc.strerror or str(exc)
        raise StartRefused(f"The sandbox could not listen on {host}:{port}: {reason}.") from None


def serve(options: argparse.Namespace, *, stdout: Output | None = None) -> int:
    """Run the sandbox for parsed ``options`` until interrupted; return 0.

    Raises :class:`StartRefused` when the options are refused (a host that is not loopback
    without ``allow_remote``, a port out of range or taken, a negative latency or timeout, a
    state file that cannot be read or written).
    """
    out = stdout or sys.stdout
    server = _start(options)
    out.write(f"Pi sandbox listening on {server.url} (Horizon: {server.horizon_url})\n")
    out.flush()
    with _sigterm_interrupts(), contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    out.write("Pi sandbox stopped.\n")
    out.flush()
    return 0
