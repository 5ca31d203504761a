"""The plugin's fixtures in a user's own suite: a child pytest with the plugin and nothing else.

This suite's own conftest empties the cache before every test; a user's suite does not, so what
the fixtures keep apart between tests is checked here, in the conditions of a user's project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django_pi_payments.testing import SandboxHandle
from tests.doc_examples import run_user_tests

JSON = "application/json"

# More sign-ins than the default pi_payments_auth rate (30/min) allows in a minute, one per test,
# all from the test client's address, and as many refused tokens (pi_payments_refused_tokens).
MANY_SIGN_INS = """
import pytest
from django.test import Client

SIGN_INS = 35


@pytest.mark.parametrize("n", range(SIGN_INS))
def test_sign_in(client, pi_settings_for_sandbox, db, n):
    user, token = pi_settings_for_sandbox.login(username=f"pioneer{n}")
    answer = client.post("/pi_payment/auth", {"accessToken": token}, "application/json")
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize("n", range(SIGN_INS))
def test_expired_token(client, pi_settings_for_sandbox, db, n):
    user, token = pi_settings_for_sandbox.login()
    pi_settings_for_sandbox.expire_token(token)
    answer = client.post("/pi_payment/auth", {"accessToken": token}, "application/json")
    assert answer.status_code == 401, answer.content


def test_the_rate_still_holds_within_a_test(pi_settings_for_sandbox, db):
    statuses = []
    for _ in range(31):
        user, token = pi_settings_for_sandbox.login()
        body = {"accessToken": token}
        answer = Client().post("/pi_payment/auth", body, "application/json")  # anonymous
        statuses.append(answer.status_code)
    assert statuses == [200] * 30 + [429]
"""


def test_throttle_counts_do_not_carry_over_between_tests(tmp_path: Path) -> None:
    output = run_user_tests(MANY_SIGN_INS, tmp_path / "test_many_sign_ins.py")
    assert "71 passed" in output


def test_a_revoked_token_is_refused_once_the_me_cache_is_off(
    client: Any, pi_settings_for_sandbox: SandboxHandle, settings: Any, db: None
) -> None:
    """As testing.md says: with ``ME_CACHE_SECONDS`` at 0, a token the test has already used is
    refused once the sandbox revoked it (with the default, Pi's earlier answer still holds)."""
    sandbox = pi_settings_for_sandbox
    user, token = sandbox.login()
    assert client.post("/pi_payment/auth", {"accessToken": token}, JSON).status_code == 200
    identifier = sandbox.create_payment(user["uid"], 1)["identifier"]
    body = {"paymentId": identifier, "accessToken": token}
    sandbox.revoke_token(token)
    client.logout()
    assert client.get("/pi_payment/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "ME_CACHE_SECONDS": 0}
    answer = client.post("/pi_payment/approve", body, JSON)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert sandbox.payment(identifier)["status"]["developer_approved"] is False
