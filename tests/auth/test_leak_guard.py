"""The suite-wide token guard of ``tests/conftest.py`` finds what it is meant to find."""

from __future__ import annotations

import logging
import secrets

from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from django_pi_payments.models import PiUser
from tests.conftest import RecordingHandler, database_leaks, find_leaks

User = get_user_model()


def secret() -> str:
    return secrets.token_urlsafe(32)


def test_log_records_are_searched_whole():
    handler = RecordingHandler()
    logger = logging.getLogger("tests.leak_guard")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    in_args, in_extra, in_traceback, absent = secret(), secret(), secret(), secret()
    try:
        logger.debug("token %s", in_args)
        logger.info("plain", extra={"token": in_extra})
        try:
            raise ValueError(in_traceback)
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    everything = {in_args, in_extra, in_traceback, absent}
    assert len(find_leaks(handler.texts, everything)) == 3
    assert find_leaks(handler.texts, {absent}) == []


def test_text_json_and_session_columns_are_searched(db):
    in_text, in_json, in_session, absent = secret(), secret(), secret(), secret()
    user = User.objects.create(**{User.USERNAME_FIELD: "leaky"})
    PiUser.objects.create(user=user, uid="uid-1", username=in_text)
    PiUser.objects.create(
        user=User.objects.create(**{User.USERNAME_FIELD: "leaky2"}), uid="uid-2", scopes=[in_json]
    )
    session = SessionStore()
    session["kept"] = in_session
    session.save()

    assert database_leaks({in_text}) == ["pi_payments.PiUser"]
    assert database_leaks({in_json}) == ["pi_payments.PiUser"]
    assert database_leaks({in_session}) == ["sessions.Session"]
    assert database_leaks({absent}) == []
