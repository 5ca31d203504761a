"""Fixtures of the client tests: a PiClient on the sandbox, and a signed-in Pioneer."""

from __future__ import annotations

import pytest

from django_pi_payments.client import PiClient


@pytest.fixture
def client(pi_sandbox):
    pi_client = PiClient(
        pi_sandbox.api_key, base_url=pi_sandbox.url, timeout=2, max_retries=2, backoff=0.01
    )
    yield pi_client
    pi_client.close()


@pytest.fixture
def payer(pi_sandbox):
    user, token = pi_sandbox.login(username="alice")
    return user, token
