"""``auth`` and ``me`` are throttled with the ``pi_payments_auth`` scope, and every client's refused
tokens with ``pi_payments_refused_tokens``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from django_pi_payments.throttles import DEFAULT_RATES, PiPaymentsThrottle

from .conftest import AUTH_URL, ME_URL, sign_in
from .test_cache import BROKEN_CACHE

FORGED = {"HTTP_AUTHORIZATION": "Bearer forged-token"}


@pytest.fixture
def rates(settings):
    def set_rates(**scopes: str | None) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}

    return set_rates


def test_default_rates():
    assert DEFAULT_RATES == {
        "pi_payments_auth": "30/min",
        "pi_payments_callbacks": "120/min",
        "pi_payments_refused_tokens": "30/min",
    }


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


def test_a_client_written_x_forwarded_for_escapes_no_count(app, pi_sandbox, rates):
    """Without ``NUM_PROXIES`` the client's address counts, not the header the client writes."""
    rates(pi_payments_auth="2/min", pi_payments_refused_tokens="3/min")
    refused = [
        APIClient().get(ME_URL, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}", **FORGED).status_code
        for n in range(5)
    ]
    assert refused == [401] * 3 + [429] * 2
    assert len(pi_sandbox.calls(route="me")) == 3
    anonymous = [
        APIClient(REMOTE_ADDR="10.0.0.2").get(ME_URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(3)
    ]
    assert [response.status_code for response in anonymous] == [401, 401, 429]


def test_behind_a_proxy_the_forwarded_address_counts(app, pi_sandbox, rates, settings):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="1/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.0.0.1")
    first = {"HTTP_X_FORWARDED_FOR": "spoofed, 203.0.113.7", **FORGED}
    second = {"HTTP_X_FORWARDED_FOR": "203.0.113.8", **FORGED}
    assert proxy.get(ME_URL, **first).status_code == 401
    again = {**first, "HTTP_X_FORWARDED_FOR": "other, 203.0.113.7"}
    assert proxy.get(ME_URL, **again).status_code == 429
    assert proxy.get(ME_URL, **second).status_code == 401


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


def test_forged_tokens_stop_reaching_pi_after_the_refused_rate(app, api, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="3/min")
    codes = [api.get(ME_URL, **FORGED).status_code for _ in range(10)]
    assert codes == [401] * 3 + [429] * 7
    assert len(pi_sandbox.calls(route="me")) == 3
    response = api.get(ME_URL, **FORGED)
    assert response.json()["error"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_refusals_are_counted_whatever_the_route_and_the_token(app, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_callbacks=None, pi_payments_refused_tokens="3/min")
    _, expired = pi_sandbox.login(username="late")
    pi_sandbox.expire_token(expired)
    client = APIClient()
    assert sign_in(client, "forged-1").status_code == 401
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {expired}").status_code == 401
    body = {"paymentId": "NotAPayment0", "accessToken": "forged-2"}
    assert client.post("/pi_payment/approve", body, format="json").status_code == 401
    assert client.post("/pi_payment/approve", body, format="json").status_code == 429
    assert len(pi_sandbox.calls(route="me")) == 3


def test_a_throttled_client_keeps_the_tokens_pi_already_vouched_for(app, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="2/min")
    _, known = pi_sandbox.login(username="known")
    _, unknown = pi_sandbox.login(username="unknown")
    client = APIClient()
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {known}").status_code == 200
    assert [client.get(ME_URL, **FORGED).status_code for _ in range(3)] == [401, 401, 429]
    pi_sandbox.clear_calls()
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {known}").status_code == 200
    assert client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {unknown}").status_code == 429
    assert pi_sandbox.calls(route="me") == []
    other_address = APIClient(REMOTE_ADDR="10.0.0.2")
    assert other_address.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {unknown}").status_code == 200


def test_accepted_tokens_are_not_counted(app, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="2/min")
    tokens = [pi_sandbox.login(username=f"user{number}")[1] for number in range(5)]
    client = APIClient()
    codes = [
        client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code for token in tokens
    ]
    assert codes == [200] * 5
    assert [client.get(ME_URL, **FORGED).status_code for _ in range(3)] == [401, 401, 429]


def test_users_without_a_site_account_are_not_counted(app, pi_sandbox, pi_config, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="1/min")
    pi_config(CREATE_USERS=False)
    _, token = pi_sandbox.login(username="stranger")
    codes = [sign_in(APIClient(), token).status_code for _ in range(3)]
    assert codes == [401] * 3
    assert APIClient().get(ME_URL, **FORGED).status_code == 401


def test_pi_error_answers_are_not_counted(app, api, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="1/min")
    pi_sandbox.add_fault("me", status=404, count=2)
    assert [api.get(ME_URL, **FORGED).status_code for _ in range(3)] == [502, 502, 401]


def test_refused_tokens_scope_can_be_switched_off(app, api, pi_sandbox, rates):
    rates(pi_payments_auth=None, pi_payments_refused_tokens=None)
    assert {api.get(ME_URL, **FORGED).status_code for _ in range(40)} == {401}
    assert len(pi_sandbox.calls(route="me")) == 40


def test_refused_tokens_are_not_counted_when_the_cache_fails(app, api, rates, settings, caplog):
    rates(pi_payments_auth=None, pi_payments_refused_tokens="1/min")
    settings.CACHES = BROKEN_CACHE
    assert {api.get(ME_URL, **FORGED).status_code for _ in range(3)} == {401}
    assert "Throttle cache write failed (CacheDown)" in caplog.text
