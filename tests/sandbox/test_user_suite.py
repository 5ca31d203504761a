"""The plugin's fixtures in a user's own suite: a child pytest with the plugin and nothing else.

This suite's own conftest empties the cache before every test; a user's suite does not, so what
the fixtures keep apart between tests is checked here, in the conditions of a user's project.
"""

from __future__ import annotations

from pathlib import Path

from tests.doc_examples import run_user_tests

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
