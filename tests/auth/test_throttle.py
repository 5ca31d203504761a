"""``auth`` and ``me`` are throttled with the ``pi_payments_auth`` scope."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from django_pi_payments.throttles import DEFAULT_RATES, PiPaymentsThrottle

from .conftest import AUTH_URL, ME_URL, sign_in
from .test_cache import BROKEN_CACHE


@pytest.fixture
def rates(settings):
    def set_rates(**scopes: str | None) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}

    return set_rates


def test_default_rates():
    assert DEFAULT_RATES == {"pi_payments_auth": "30/min", "pi_payments_callbacks": "120/min"}


def test_default_auth_rate_applies(app, api, pi_sandbox):
    codes = [api.post(AUTH_URL, {}, format="json").status_code for _ in range(31)]
    assert codes == [400] * 30 + [429]
    response = api.post(AUTH_URL, {}, format="json")
    assert response.json()["error"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_rate_can_be_overridden(app, pioneer, rates):
    rates(pi_payments_auth="2/min")
    codes = [sign_in(APIClient(), pioneer[1]).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_anonymous_clients_are_counted_per_ip(app, rates):
    rates(pi_payments_auth="1/min")
    first, second = APIClient(), APIClient(REMOTE_ADDR="10.0.0.2")
    assert first.get(ME_URL).status_code == 401
    assert first.get(ME_URL).status_code == 429
    assert second.get(ME_URL).status_code == 401


def test_authenticated_users_are_counted_per_user(app, pi_sandbox, rates):
    rates(pi_payments_auth="1/min")
    _, alice = pi_sandbox.login(username="alice")
    _, bob = pi_sandbox.login(username="bob")
    client = APIClient()  # one IP for both
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {alice}").status_code == 200
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {bob}").status_code == 200
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {alice}").status_code == 429


def test_scope_can_be_switched_off(app, api, rates):
    rates(pi_payments_auth=None)
    assert {api.get(ME_URL).status_code for _ in range(40)} == {401}


def test_throttle_lets_requests_through_when_the_cache_fails(app, api, rates, settings, caplog):
    rates(pi_payments_auth="1/min")
    settings.CACHES = BROKEN_CACHE
    assert {api.get(ME_URL).status_code for _ in range(3)} == {401}
    assert "Throttle cache read failed (CacheDown)" in caplog.text


def test_unknown_scope_is_a_configuration_error():
    throttle = PiPaymentsThrottle()
    throttle.scope = "nope"
    with pytest.raises(Exception, match="No throttle rate for scope 'nope'"):
        throttle.get_rate()
