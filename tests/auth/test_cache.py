"""The ``/me`` cache: keyed by SHA-256, bounded by ``ME_CACHE_SECONDS`` and the token's expiry."""

from __future__ import annotations

import hashlib
import pickle
import time
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from django_pi_payments.auth import me_cache_key, verify_access_token
from django_pi_payments.models import PiUser

from .conftest import ME_URL, sign_in

BROKEN_CACHE = {"default": {"BACKEND": "tests.auth.broken_cache.BrokenCache"}}


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_warm_cache_makes_no_me_call(app, pi_sandbox, pioneer):
    _, token = pioneer
    assert sign_in(APIClient(), token).status_code == 200
    assert len(pi_sandbox.calls(route="me")) == 1
    pi_sandbox.clear_calls()

    for _ in range(3):
        assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    assert sign_in(APIClient(), token).status_code == 200

    assert pi_sandbox.calls(route="me") == []


def test_signal_is_sent_when_pi_confirms_the_token(
    app, pioneer, pi_user_signals, django_capture_on_commit_callbacks
):
    _, token = pioneer
    with django_capture_on_commit_callbacks(execute=True):
        verify_access_token(token)
        verify_access_token(token)  # from the cache: Pi was not asked
    assert len(pi_user_signals) == 1
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        verify_access_token(token)
    assert len(pi_user_signals) == 2


def test_cache_key_is_the_sha256_of_the_token_and_holds_no_token(app, pioneer):
    user_data, token = pioneer
    sign_in(APIClient(), token)
    key = "pi_payments:me:" + hashlib.sha256(token.encode()).hexdigest()
    assert me_cache_key(token) == key
    cached = cache.get(key)
    assert cached["uid"] == user_data["uid"]
    assert token not in pickle.dumps(cached).decode("latin-1")
    assert cache.get(token) is None


def test_cache_never_outlives_the_token(app, pi_sandbox, pi_config, pioneer):
    """A token valid for 3 s, with a 60 s cache: after its expiry Pi is asked again, and refuses.

    (Pi's ``valid_until`` has whole seconds, so a 2 s token may arrive with under a second left,
    which is not cached at all.)
    """
    pi_config(ME_CACHE_SECONDS=60)
    user_data, _ = pioneer
    token = pi_sandbox.create_token(user_data["uid"], ttl_seconds=3)
    assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    assert len(pi_sandbox.calls(route="me")) == 1

    time.sleep(3.1)
    response = APIClient().get(ME_URL, **bearer(token))

    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    assert len(pi_sandbox.calls(route="me")) == 2


def test_cached_answer_past_valid_until_is_ignored(app, pi_sandbox, pioneer):
    """Even if the cache keeps an entry too long, an answer for an expired token is not used."""
    _, token = pioneer
    sign_in(APIClient(), token)
    key = me_cache_key(token)
    stale = cache.get(key)
    stale["credentials"]["valid_until"] = {"timestamp": int(time.time()) - 5}
    cache.set(key, stale, 60)
    pi_sandbox.expire_token(token)

    response = sign_in(APIClient(), token)

    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"


def test_token_about_to_expire_is_not_cached(app, pi_sandbox, pioneer):
    user_data, _ = pioneer
    token = pi_sandbox.create_token(user_data["uid"], ttl_seconds=0.5)
    assert sign_in(APIClient(), token).status_code == 200
    assert cache.get(me_cache_key(token)) is None


def test_cache_can_be_switched_off(app, pi_sandbox, pi_config, pioneer):
    pi_config(ME_CACHE_SECONDS=0)
    _, token = pioneer
    for _ in range(2):
        assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    assert len(pi_sandbox.calls(route="me")) == 2


def test_switching_the_cache_off_ends_the_answers_cached_before(
    app, pi_sandbox, pi_config, pioneer
):
    """An operator who sets ME_CACHE_SECONDS to 0 (say, to make a revocation bite at once) gets
    Pi asked on the next request, not after the entries cached before run out."""
    pi_config(ME_CACHE_SECONDS=3600)
    _, token = pioneer
    assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    pi_sandbox.revoke_token(token)
    pi_config(ME_CACHE_SECONDS=0)
    response = APIClient().get(ME_URL, **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_revoked_token_works_until_the_cache_entry_ends(app, pi_sandbox, pi_config, pioneer):
    """The documented trade-off: revocation is seen after at most ME_CACHE_SECONDS."""
    pi_config(ME_CACHE_SECONDS=1)
    _, token = pioneer
    assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    pi_sandbox.revoke_token(token)
    assert APIClient().get(ME_URL, **bearer(token)).status_code == 200
    time.sleep(1.1)
    response = APIClient().get(ME_URL, **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_cache_outage_falls_back_to_pi(app, pi_sandbox, pioneer, settings, caplog):
    settings.CACHES = BROKEN_CACHE
    user_data, token = pioneer

    first = sign_in(APIClient(), token)
    second = APIClient().get(ME_URL, **bearer(token))

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json()["uid"] == user_data["uid"]
    assert len(pi_sandbox.calls(route="me")) == 2
    assert PiUser.objects.count() == 1
    assert "Pi /me cache read failed (CacheDown)" in caplog.text


def test_a_cache_outage_warns_when_it_starts_then_once_a_minute(
    app, pi_sandbox, pioneer, settings, caplog
):
    settings.CACHES = BROKEN_CACHE
    _user_data, token = pioneer
    api = APIClient()
    for _ in range(10):
        assert api.get(ME_URL, **bearer(token)).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for line in (
        "Pi /me cache read failed (CacheDown); asking Pi.",
        "Pi /me cache write failed (CacheDown).",
        "Throttle cache read failed (CacheDown); not throttling.",
        "Throttle cache write failed (CacheDown).",
    ):
        assert warnings.count(line) == 1, (line, warnings)
    assert len(warnings) == 4
    assert len(pi_sandbox.calls(route="me")) == 10  # every request still verified at Pi


def test_verify_access_token_with_a_broken_cache(app, pioneer, settings):
    settings.CACHES = BROKEN_CACHE
    user_data, token = pioneer
    assert verify_access_token(token).uid == user_data["uid"]


def test_verified_users_follow_each_token(app, pi_sandbox, pioneer):
    """Two tokens of one uid with different scopes: each verification reflects its own token."""
    user_data, full_token = pioneer
    assert APIClient().get(ME_URL, **bearer(full_token)).status_code == 200
    pi_sandbox.create_user(uid=user_data["uid"], scopes=["username"])
    narrow_token = pi_sandbox.create_token(user_data["uid"])

    narrow: Any = verify_access_token(narrow_token)
    assert narrow.scopes == ["username"]
    full = verify_access_token(full_token)  # from the cache
    assert "payments" in full.scopes
    assert PiUser.objects.get().scopes == full.scopes


def test_a_cached_answer_matching_the_stored_user_is_one_read(app, pioneer):
    _, token = pioneer
    verify_access_token(token)  # Pi asked, the Pi user stored, the answer cached
    with CaptureQueriesContext(connection) as captured:
        pi_user = verify_access_token(token)
    assert len(captured) == 1
    assert "FOR UPDATE" not in captured[0]["sql"]
    assert pi_user.user.is_active


def test_a_cached_answer_that_differs_from_the_stored_user_updates_it(app, pioneer):
    _, token = pioneer
    first = verify_access_token(token)
    PiUser.objects.filter(pk=first.pk).update(scopes=["username"], username="renamed")
    again = verify_access_token(token)  # from the cache: it brings the row back to Pi's answer
    again.refresh_from_db()
    assert "payments" in again.scopes
    assert again.username == first.username
