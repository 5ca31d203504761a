"""``PiAccessTokenBackend`` through ``django.contrib.auth``."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import aauthenticate, authenticate, get_user_model
from django.test import RequestFactory

from django_pi_payments.backends import PiAccessTokenBackend
from django_pi_payments.exceptions import PiAPIError, PiUnavailable
from django_pi_payments.models import PiUser

User = get_user_model()


def test_authenticate_with_a_token(app, pioneer):
    user_data, token = pioneer
    user = authenticate(RequestFactory().get("/"), pi_access_token=token)
    assert user is not None
    assert user == PiUser.objects.get(uid=user_data["uid"]).user
    assert user.backend == "django_pi_payments.backends.PiAccessTokenBackend"


def test_authenticate_without_a_request(app, pioneer):
    assert authenticate(None, pi_access_token=pioneer[1]) is not None


def test_refused_token_is_none(app, pi_sandbox, pioneer):
    pi_sandbox.revoke_token(pioneer[1])
    assert authenticate(None, pi_access_token=pioneer[1]) is None


def test_password_credentials_are_left_to_other_backends(app, pi_sandbox):
    User.objects.create_user(**{User.USERNAME_FIELD: "judy"}, password="pw")
    user = authenticate(None, username="judy", password="pw")
    assert user is not None
    assert user.backend == "django.contrib.auth.backends.ModelBackend"
    assert PiAccessTokenBackend().authenticate(None, username="judy", password="pw") is None
    assert pi_sandbox.calls(route="me") == []


def test_pi_outage_propagates(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", drop=True, count=None)
    with pytest.raises(PiUnavailable):
        authenticate(None, pi_access_token=pioneer[1])


def test_pi_error_answer_propagates(app, pi_sandbox, pioneer):
    pi_sandbox.add_fault("me", status=404, count=None)
    with pytest.raises(PiAPIError):
        authenticate(None, pi_access_token=pioneer[1])


def test_aauthenticate_with_a_token(app, pi_sandbox, pioneer):
    """The async API verifies the token too, rather than ``ModelBackend``'s password check."""
    user_data, token = pioneer
    user = async_to_sync(aauthenticate)(None, pi_access_token=token)
    assert user is not None
    assert user == PiUser.objects.get(uid=user_data["uid"]).user
    assert user.backend == "django_pi_payments.backends.PiAccessTokenBackend"
    assert async_to_sync(aauthenticate)(None, pi_access_token="forged-token") is None


def test_aauthenticate_leaves_passwords_to_other_backends(app, pi_sandbox):
    User.objects.create_user(**{User.USERNAME_FIELD: "kim"}, password="pw")
    user = async_to_sync(aauthenticate)(None, username="kim", password="pw")
    assert user is not None
    assert user.backend == "django.contrib.auth.backends.ModelBackend"
    backend = PiAccessTokenBackend()
    assert async_to_sync(backend.aauthenticate)(None, username="kim", password="pw") is None


def test_get_user(app, pioneer):
    backend = PiAccessTokenBackend()
    user = backend.authenticate(None, pi_access_token=pioneer[1])
    assert user is not None
    assert backend.get_user(user.pk) == user
    assert backend.get_user(user.pk + 1000) is None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert backend.get_user(user.pk) is None
