"""``manage.py pi_sandbox``: run the local Pi Platform API simulator (development, tests)."""

from __future__ import annotations

from argparse import ArgumentParser, Namespace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...sandbox.cli import StartRefused, add_arguments, serve

SANDBOX_OPTIONS = (
    "host",
    "port",
    "latency_ms",
    "api_key",
    "network",
    "state_file",
    "approval_timeout",
    "allow_remote",
    "allow_origin",
    "allow_host",
)


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
        """Serve until interrupted; refused options are a :class:`CommandError`."""
        sandbox_options = Namespace(**{name: options[name] for name in SANDBOX_OPTIONS})
        try:
            serve(sandbox_options, stdout=self.stdout)
        except StartRefused as exc:
            raise CommandError(f"The sandbox refused to start. {exc}") from None
