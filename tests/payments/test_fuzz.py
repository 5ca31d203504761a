"""Property-based fuzzing of every POST route: always a 4xx, never a 500, nothing stored."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from django_pi_payments.models import Payment, PaymentEvent, PiUser

ROUTES = ["auth", "approve", "complete", "cancel", "error", "incomplete"]
FIELDS = ["paymentId", "accessToken", "transactionId", "txid", "error", "payment"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.text(alphabet="ABCDEFabcdef0123456789", min_size=60, max_size=70),
    st.just("x" * 100_000),
    st.just("\U0001d518\u202e\u0000\ud7ff\u4e2d\u6587"),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=4),
    values,
)
raw_bodies = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode))


def _counts() -> tuple[int, ...]:
    return (
        Payment.objects.count(),
        PaymentEvent.objects.count(),
        PiUser.objects.count(),
        get_user_model().objects.count(),
    )


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def configured(pi_settings_for_sandbox, db):
    return pi_settings_for_sandbox


@FUZZ
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_json_bodies_never_500(configured, route, body):
    before = _counts()
    response = APIClient().post(f"/pi_payment/{route}", body, format="json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert json.loads(response.content)["error"]
    assert _counts() == before


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    raw=raw_bodies,
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
    ),
)
def test_raw_bodies_never_500(configured, route, raw, content_type):
    before = _counts()
    response = APIClient().generic("POST", f"/pi_payment/{route}", raw, content_type=content_type)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert _counts() == before
