"""``PiAccessTokenAuthentication`` follows DRF's authentication contract."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from django_pi_payments.authentication import PiAccessTokenAuthentication
from django_pi_payments.models import PiUser

from .conftest import ME_URL

pytestmark = pytest.mark.urls("tests.auth.urls")

User = get_user_model()


def get(path: str, authorization: str | None = None) -> Any:
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return APIClient().get(path, **extra)


def test_bearer_token_authenticates(app, pioneer):
    user_data, token = pioneer
    response = get("/whoami", f"Bearer {token}")
    assert response.status_code == 200
    assert response.json() == {
        "user": "pi_alice",
        "pi_uid": user_data["uid"],
        "auth": "PiAccessTokenAuthentication",
    }


def test_scheme_is_case_insensitive(app, pioneer):
    assert get("/whoami", f"bearer {pioneer[1]}").status_code == 200


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer forged-token-0123456789abcdef", "invalid_token"),
        ("Bearer", "invalid_token"),
        ("Bearer one two", "invalid_token"),
    ],
)
def test_bad_bearer_is_401_with_challenge(app, pi_sandbox, authorization, code):
    response = get("/whoami", authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.data["detail"].code == code


def test_expired_bearer_is_401_token_expired(app, pi_sandbox, pioneer):
    pi_sandbox.expire_token(pioneer[1])
    response = get(ME_URL, f"Bearer {pioneer[1]}")
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_non_ascii_bearer_is_401(app, pi_sandbox):
    response = APIClient().get("/whoami", HTTP_AUTHORIZATION="Bearer t\xf6ken")
    assert response.status_code == 401
    assert pi_sandbox.calls(route="me") == []


def test_other_schemes_pass_through(app, pi_sandbox):
    User.objects.create_user(**{User.USERNAME_FIELD: "ivan"}, password="pw")
    basic = base64.b64encode(b"ivan:pw").decode()
    response = get("/whoami", f"Basic {basic}")
    assert response.status_code == 200
    assert response.json() == {"user": "ivan", "pi_uid": None, "auth": "BasicAuthentication"}
    assert pi_sandbox.calls(route="me") == []


@pytest.mark.parametrize("authorization", [None, "Token abc", "Basic Zm9vOmJhcg==x", "Key k"])
def test_authenticate_returns_none_for_other_schemes(authorization, pi_sandbox):
    factory = APIRequestFactory()
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    drf_request = Request(factory.get("/whoami", **extra))
    assert PiAccessTokenAuthentication().authenticate(drf_request) is None
    assert pi_sandbox.calls(route="me") == []


def test_authenticate_returns_user_and_pi_user(app, pioneer):
    user_data, token = pioneer
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    user, pi_user = PiAccessTokenAuthentication().authenticate(request)
    assert isinstance(pi_user, PiUser)
    assert pi_user.uid == user_data["uid"]
    assert user == pi_user.user


def test_no_credentials_is_401_with_challenge(app):
    response = get("/whoami")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_pi_unreachable_is_503_in_any_drf_view(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", drop=True, count=None)
    response = get("/whoami", f"Bearer {pioneer[1]}")
    assert response.status_code == 503
    assert response.data["detail"].code == "pi_unavailable"


def test_pi_error_answer_is_502_in_any_drf_view(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=404, count=None)
    response = get("/whoami", f"Bearer {pioneer[1]}")
    assert response.status_code == 502
    assert response.data["detail"].code == "pi_refused"


def test_pi_error_answer_is_502_in_the_app_format_with_pi_s_code(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=404, body={"error": "not_found"}, count=None)
    response = get(ME_URL, f"Bearer {pioneer[1]}")
    assert response.status_code == 502
    assert response.json() == {
        "error": "pi_refused",
        "detail": "Pi Network could not check the access token; try again later.",
        "pi_error": "not_found",
    }


def test_pi_unreachable_is_503_in_the_app_format(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=503, count=None)
    response = get(ME_URL, f"Bearer {pioneer[1]}")
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"


def test_me_with_bearer(app, pioneer):
    user_data, token = pioneer
    response = get(ME_URL, f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["uid"] == user_data["uid"]
    assert "payments" in response.json()["scopes"]
