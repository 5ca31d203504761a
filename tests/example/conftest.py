"""Fixtures of the example shop's tests: the shop running against the session's sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_pi_payments.sandbox import SandboxServer

from .shop_process import ShopProcess


@pytest.fixture(scope="module")
def shop(
    pi_sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShopProcess]:
    """The example shop on a free port with its own SQLite database, against the sandbox."""
    with ShopProcess(tmp_path_factory.mktemp("shop"), pi_sandbox_server.url) as running:
        yield running
