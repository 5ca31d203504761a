"""``manage.py pi_sandbox``: run the local Pi Platform API simulator (development, tests)."""

from __future__ import annotations

from argparse import ArgumentParser, Namespace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...sandbox.cli import add_arguments, serve
from ...sandbox.errors import SandboxError

SANDBOX_OPTIONS = (
    "host",
    "port",
    "latency_ms",
    "api_key",
    "network",
    "state_file",
    "approval_timeout",
    "allow_remote",
)
MAX_PORT = 65535


class Command(BaseCommand):
    """Serve the sandbox until Ctrl-C; same options as ``python -m django_pi_payments.sandbox``."""

    help = (
        "Run the Pi sandbox: a local, stateful simulator of the Pi Platform API and Horizon. "
        "Point PI_PAYMENTS['API_BASE_URL'] at the URL it prints and PI_PAYMENTS['HORIZON_URL'] "
        "at that URL plus /horizon (else transactions are checked on the real Pi Horizon)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser | ArgumentParser) -> None:
        """The sandbox's own options."""
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Serve until interrupted."""
        host, port = options["host"], options["port"]
        if not 0 <= port <= MAX_PORT:
            raise CommandError(f"--port must be from 0 to {MAX_PORT}.")
        sandbox_options = Namespace(**{name: options[name] for name in SANDBOX_OPTIONS})
        try:
            status = serve(sandbox_options, stdout=self.stdout)
        except SandboxError as exc:
            raise CommandError(f"The sandbox refused its options: {exc}") from None
        except OSError as exc:  # the port is taken, or the address is not this host's
            reason = exc.strerror or str(exc)
            message = f"The sandbox could not listen on {host}:{port}: {reason}."
            raise CommandError(message) from None
        if status != 0:
            raise CommandError("The sandbox refused to start; see the message above.")
