"""The management commands as an operator runs them: errors are one line, not a traceback."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from stellar_sdk import Keypair

from django_pi_payments.management.commands.pi_send import Command as PiSend

from .database_lock import database_down as taken_away


@pytest.fixture
def database_down(transactional_db: None) -> Iterator[None]:
    """The default database refuses every new connection while the test runs."""
    with taken_away():
        yield


def test_pi_send_with_the_database_down_is_a_command_error(settings, database_down):
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "WALLET_PRIVATE_SEED": Keypair.random().secret}
    args = ["--uid", "pioneer", "--amount", "1", "--memo", "Prize"]
    with pytest.raises(CommandError, match=r"^The database could not be used: "):
        call_command("pi_send", *args, stdout=io.StringIO(), stderr=io.StringIO())
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        PiSend(stdout=io.StringIO(), stderr=err).run_from_argv(
            ["manage.py", "pi_send", "--skip-checks", *args]
        )
    assert exited.value.code == 1
    assert err.getvalue().startswith("CommandError: The database could not be used: ")
