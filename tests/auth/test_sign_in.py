"""``POST auth`` and ``GET me`` against the sandbox: users, errors, outages and the hook."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from django_pi_payments.client import get_client
from django_pi_payments.models import PiUser

from .conftest import AUTH_URL, ME_URL, sign_in

User = get_user_model()


def test_valid_token_logs_in_and_creates_the_users(
    app, api, pioneer, pi_user_signals, django_capture_on_commit_callbacks
):
    user_data, token = pioneer
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_in(api, token)

    assert response.status_code == 200
    assert response.json() == {"uid": user_data["uid"], "username": "alice"}
    pi_user = PiUser.objects.select_related("user").get(uid=user_data["uid"])
    assert pi_user.username == "alice"
    assert set(pi_user.scopes) == set(user_data["scopes"])
    assert pi_user.token_valid_until is not None
    assert pi_user.user.get_username() == "pi_alice"
    assert not pi_user.user.has_usable_password()
    assert [signal_user.pk for signal_user, _ in pi_user_signals] == [pi_user.pk]
    # The session is logged in: ``me`` answers without a token.
    me = api.get(ME_URL)
    assert me.status_code == 200
    assert me.json() == {
        "uid": user_data["uid"],
        "username": "alice",
        "scopes": pi_user.scopes,
    }


def test_second_sign_in_reuses_the_users(app, pi_sandbox, pioneer):
    user_data, token = pioneer
    assert sign_in(APIClient(), token).status_code == 200
    second_token = pi_sandbox.create_token(user_data["uid"])
    assert sign_in(APIClient(), second_token).status_code == 200
    assert PiUser.objects.count() == 1
    assert User.objects.count() == 1


def test_new_pi_username_updates_the_pi_user(app, pi_sandbox, pioneer):
    user_data, token = pioneer
    assert sign_in(APIClient(), token).status_code == 200
    pi_sandbox.create_user(uid=user_data["uid"], username="alice_renamed")
    new_token = pi_sandbox.create_token(user_data["uid"])

    response = sign_in(APIClient(), new_token)

    assert response.json()["username"] == "alice_renamed"
    pi_user = PiUser.objects.select_related("user").get(uid=user_data["uid"])
    assert pi_user.username == "alice_renamed"
    assert pi_user.user.get_username() == "pi_alice"  # the site username stays
    assert User.objects.count() == 1


def test_without_username_scope_the_known_username_stays(app, pi_sandbox, pioneer):
    user_data, token = pioneer
    sign_in(APIClient(), token)
    pi_sandbox.create_user(uid=user_data["uid"], scopes=["payments"])
    response = sign_in(APIClient(), pi_sandbox.create_token(user_data["uid"]))
    assert response.status_code == 200
    pi_user = PiUser.objects.get(uid=user_data["uid"])
    assert pi_user.username == "alice"
    assert pi_user.scopes == ["payments"]


def test_username_of_a_pioneer_without_username_scope(app, pi_sandbox):
    user_data = pi_sandbox.create_user(username="bob", scopes=["payments"])
    response = sign_in(APIClient(), pi_sandbox.create_token(user_data["uid"]))
    assert response.status_code == 200
    assert response.json()["username"] == ""
    user = PiUser.objects.get(uid=user_data["uid"]).user
    assert user.get_username() == "pi_" + re.sub(r"[^A-Za-z0-9_.-]", "", user_data["uid"])[:12]


def test_expired_token_is_refused(app, api, pi_sandbox, pioneer):
    _, token = pioneer
    pi_sandbox.expire_token(token)
    response = sign_in(api, token)
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not PiUser.objects.exists()
    assert not User.objects.exists()


def test_revoked_token_is_refused(app, api, pi_sandbox, pioneer):
    _, token = pioneer
    pi_sandbox.revoke_token(token)
    response = sign_in(api, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_forged_token_is_refused(app, api, pi_sandbox, watched_secrets):
    forged = "forged-" + "x" * 40
    watched_secrets.add(forged)
    response = sign_in(api, forged)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "detail": "Pi refused the access token."}
    assert len(pi_sandbox.calls(route="me")) == 1
    assert not PiUser.objects.exists()


@pytest.mark.parametrize("token", ["has space", "tab\there", "new\nline", "ünïcode", "é" * 10])
def test_malformed_token_is_refused_without_asking_pi(app, api, pi_sandbox, token):
    response = sign_in(api, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert pi_sandbox.calls(route="me") == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"accessToken": ""},
        {"accessToken": None},
        {"accessToken": 12345},
        {"accessToken": True},
        {"accessToken": ["a"]},
        {"accessToken": {"a": "b"}},
        {"accessToken": "a" * 4097},
        ["accessToken"],
    ],
)
def test_bad_body_is_invalid_request(app, api, pi_sandbox, body):
    response = api.post(AUTH_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert pi_sandbox.calls(route="me") == []


def test_other_methods_are_not_allowed(app, api):
    assert api.get(AUTH_URL).status_code == 405


def test_route_with_trailing_slash(app, api, pioneer):
    assert api.post(AUTH_URL + "/", {"accessToken": pioneer[1]}, format="json").status_code == 200


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}])
def test_pi_outage_is_503_and_creates_nothing(app, api, pi_sandbox, pioneer, fault):
    pi_sandbox.add_fault("me", count=None, **fault)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    assert not PiUser.objects.exists()
    assert not User.objects.exists()
    assert api.get(ME_URL).status_code == 401  # not logged in


def test_pi_timeout_is_503(app, api, pi_sandbox, pioneer, pi_config):
    pi_config(TIMEOUT=0.5, MAX_RETRIES=0)
    pi_sandbox.add_fault("me", hang=True, hang_seconds=2, count=1)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    assert not PiUser.objects.exists()


def test_pi_rate_limit_is_503(app, api, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=429, count=None)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"


@pytest.mark.parametrize("odd", ["\x00", "\ud800"])
@pytest.mark.parametrize("field", ["uid", "username"])
def test_a_user_named_with_characters_no_database_stores_is_unreadable(
    app, api, pi_sandbox, pioneer, field, odd
):
    user_data, token = pioneer
    pi_sandbox.add_fault("me", status=200, body={**user_data, field: f"al{odd}ice"})
    response = sign_in(api, token)
    assert (response.status_code, response.json()["error"]) == (503, "pi_unavailable")
    assert not PiUser.objects.exists()


@pytest.mark.parametrize("odd", ["\x00", "\ud800"])
def test_a_scope_holding_characters_no_database_stores_is_left_out(
    app, api, pi_sandbox, pioneer, odd
):
    _user, token = pioneer
    me = get_client().me(token).raw
    credentials = {**me["credentials"], "scopes": ["username", f"pay{odd}ments"]}
    pi_sandbox.add_fault("me", status=200, body={**me, "credentials": credentials})
    assert sign_in(api, token).status_code == 200
    assert PiUser.objects.get().scopes == ["username"]


@pytest.mark.parametrize("status", [400, 403, 404])
def test_pi_answering_other_than_401_is_502_not_a_refused_token(
    app, api, pi_sandbox, pioneer, status
):
    """Pi refuses a bad token with 401; a 404 (wrong ``API_BASE_URL``) or a firewall's 403 says
    nothing about the token, so it is not the user's to fix."""
    pi_sandbox.add_fault("me", status=status, count=None)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 502
    assert response.json()["error"] == "pi_refused"
    assert not PiUser.objects.exists()
    assert not User.objects.exists()
    assert api.get(ME_URL).status_code == 401  # not logged in


def test_stopped_pi_is_503(app, api, pioneer, pi_config):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pi_config(API_BASE_URL=f"http://127.0.0.1:{port}", MAX_RETRIES=0)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 503
    assert response.json()["error"] == "pi_unavailable"
    assert not PiUser.objects.exists()
    assert not User.objects.exists()


def test_no_user_creation_refuses_unknown_pioneers(app, api, pioneer, pi_config):
    pi_config(CREATE_USERS=False)
    response = sign_in(api, pioneer[1])
    assert response.status_code == 401
    assert response.json()["error"] == "user_not_allowed"
    assert not PiUser.objects.exists()
    assert not User.objects.exists()


def test_no_user_creation_still_signs_in_known_pioneers(app, pi_sandbox, pioneer, pi_config):
    user_data, token = pioneer
    assert sign_in(APIClient(), token).status_code == 200
    pi_config(CREATE_USERS=False)
    response = sign_in(APIClient(), pi_sandbox.create_token(user_data["uid"]))
    assert response.status_code == 200


def map_to_shop_account(user_data: Any, request: Any) -> Any:
    """A USER_MAPPER: Pioneers named ``shop_*`` are the shop's existing accounts."""
    if user_data.username.startswith("shop_"):
        return User.objects.get(**{User.USERNAME_FIELD: user_data.username.removeprefix("shop_")})
    return None


def test_user_mapper_links_an_existing_user(app, api, pi_sandbox, pi_config):
    pi_config(USER_MAPPER="tests.auth.test_sign_in.map_to_shop_account")
    carol = User.objects.create(**{User.USERNAME_FIELD: "carol"})
    user_data, token = pi_sandbox.login(username="shop_carol")

    response = sign_in(api, token)

    assert response.status_code == 200
    assert PiUser.objects.get(uid=user_data["uid"]).user == carol
    assert User.objects.count() == 1
    assert int(api.session["_auth_user_id"]) == carol.pk


def test_user_mapper_returning_none_falls_back(app, api, pi_sandbox, pi_config):
    pi_config(USER_MAPPER=map_to_shop_account)
    _, token = pi_sandbox.login(username="dave")
    assert sign_in(api, token).status_code == 200
    assert User.objects.get().get_username() == "pi_dave"


def test_user_mapper_with_creation_off(app, api, pi_sandbox, pi_config):
    pi_config(USER_MAPPER=map_to_shop_account, CREATE_USERS=False)
    User.objects.create(**{User.USERNAME_FIELD: "erin"})
    _, mapped_token = pi_sandbox.login(username="shop_erin")
    _, unmapped_token = pi_sandbox.login(username="frank")
    assert sign_in(APIClient(), mapped_token).status_code == 200
    refused = sign_in(APIClient(), unmapped_token)
    assert refused.status_code == 401
    assert refused.json()["error"] == "user_not_allowed"


def test_user_mapper_gets_the_session_request(app, pi_sandbox, pi_config):
    """The mapper can link a Pi account to the account signed in on the site."""
    seen: list[Any] = []

    def link_to_session_user(user_data: Any, request: Any) -> Any:
        seen.append(request)
        return request.user if request.user.is_authenticated else None

    pi_config(USER_MAPPER=link_to_session_user)
    grace = User.objects.create(**{User.USERNAME_FIELD: "grace"})
    client = APIClient()
    client.force_login(grace)
    _, token = pi_sandbox.login(username="grace_on_pi")

    assert sign_in(client, token).status_code == 200
    assert PiUser.objects.get().user == grace
    assert seen[0].path == AUTH_URL


def test_user_already_linked_to_another_uid_is_refused(app, pi_sandbox, pi_config):
    pi_config(USER_MAPPER=map_to_shop_account)
    User.objects.create(**{User.USERNAME_FIELD: "heidi"})
    _, first = pi_sandbox.login(username="shop_heidi")
    _, second = pi_sandbox.login(username="shop_heidi")  # another uid, same mapping
    assert sign_in(APIClient(), first).status_code == 200
    response = sign_in(APIClient(), second)
    assert response.status_code == 401
    assert response.json()["error"] == "user_not_allowed"
    assert PiUser.objects.count() == 1


def test_inactive_user_is_refused(app, api, pi_sandbox, pioneer):
    user_data, token = pioneer
    assert sign_in(APIClient(), token).status_code == 200
    User.objects.update(is_active=False)
    response = sign_in(api, pi_sandbox.create_token(user_data["uid"]))
    assert response.status_code == 401
    assert response.json()["error"] == "user_not_allowed"


def test_sign_in_needs_no_csrf_token_but_json(app, pioneer):
    client = Client(enforce_csrf_checks=True)
    form = client.post(AUTH_URL, {"accessToken": pioneer[1]})
    assert form.status_code == 415
    text = client.post(AUTH_URL, pioneer[1], content_type="text/plain")
    assert text.status_code == 415
    response = client.post(AUTH_URL, {"accessToken": pioneer[1]}, content_type="application/json")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies  # login() rotated it for the next session writes


def test_sign_in_rotates_the_session_key(app, pioneer):
    # Session fixation: a key planted before sign-in must not become the signed-in session.
    planted = Client()
    session = planted.session
    session["cart"] = [1]
    session.save()
    victim = Client()
    victim.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    response = victim.post(AUTH_URL, {"accessToken": pioneer[1]}, content_type="application/json")
    assert response.status_code == 200
    assert victim.cookies[settings.SESSION_COOKIE_NAME].value != session.session_key
    assert victim.session["cart"] == [1]  # the visitor's data is kept under the new key
    assert planted.get(ME_URL).status_code == 401


def test_signing_in_as_someone_else_replaces_the_session(app, pi_sandbox, pioneer):
    client = APIClient()
    assert sign_in(client, pioneer[1]).status_code == 200
    other, other_token = pi_sandbox.login(username="mallory")
    assert sign_in(client, other_token).status_code == 200
    assert client.get(ME_URL).json()["uid"] == other["uid"]


def test_me_without_a_session_is_401(app, api):
    response = api.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_me_for_a_user_without_pi_account_is_401(app, api):
    api.force_login(User.objects.create(**{User.USERNAME_FIELD: "staff"}))
    response = api.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_one_pi_blip_is_retried(app, api, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=503, count=1)
    assert sign_in(api, pioneer[1]).status_code == 200
    assert len(pi_sandbox.calls(route="me")) == 2
