"""Suite-wide guard: no raw Pi access token may reach a log record or the database.

After every test, each access token issued during it must be absent from

* every log record emitted while it ran (setup, call and teardown), at any level: the root logger
  is lowered to DEBUG for the test and a recording handler sees each record's formatted text,
  traceback and extra attributes;
* every text and JSON column of every row of every concrete model, and the decoded data of
  every session, when the test could use the database. This check runs right after the test
  function, before the database fixtures roll back.

Also, every test starts with an empty default cache, so that throttle counts and cached ``/me``
answers of one test cannot leak into the next.

Tokens are read from the state of the in-process sandbox the test used (the ``pi_sandbox_server``
fixture behind ``pi_sandbox``), so every test that issues tokens through the sandbox is covered
without doing anything. Other secrets (a forged token, say) can be added to the ``watched_secrets``
fixture. Failures show tokens redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator

import pytest
from django.apps import apps
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.cache import cache
from django.db import connections, models, router
from django.db.models.functions import Cast
from django.test import TransactionTestCase

from django_pi_payments import auth, throttles
from django_pi_payments.conf import redact
from django_pi_payments.logs import Occasionally
from django_pi_payments.sandbox import SandboxServer, SandboxState
from django_pi_payments.views import base as views_base

_DB_FIXTURES = frozenset({"_django_db_helper", "db", "transactional_db"})
_TEXT_FIELDS = (models.CharField, models.TextField)


class RecordingHandler(logging.Handler):
    """Keeps the full text of every record it sees: message, traceback and attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted line (with any traceback), then every attribute, ``extra`` ones included.
        self.texts.append(f"{self.format(record)}\n{vars(record)!r}")


_HANDLER = pytest.StashKey[tuple[RecordingHandler, int]]()
_SECRETS = pytest.StashKey[set[str]]()


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.clear()
    # Warnings let through once a minute: each test sees its first ones.
    monkeypatch.setattr(auth, "cache_failure_lines", Occasionally(60))
    monkeypatch.setattr(throttles, "cache_failure_lines", Occasionally(60))
    monkeypatch.setattr(views_base, "verification_failure_lines", Occasionally(60))


@pytest.fixture
def watched_secrets(request: pytest.FixtureRequest) -> set[str]:
    """A set of extra strings that must not leak either; add to it in a test."""
    return request.node.stash.setdefault(_SECRETS, set())


def _issued_tokens(item: pytest.Item) -> set[str]:
    tokens = set(item.stash.get(_SECRETS, set()))
    for value in getattr(item, "funcargs", {}).values():
        state = value.state if isinstance(value, SandboxServer) else value
        if isinstance(state, SandboxState):
            with state.lock:
                tokens.update(state.tokens)
    return {token for token in tokens if token}


def find_leaks(texts: Iterable[str], secrets: set[str]) -> list[str]:
    """The secrets (redacted) that occur in any of ``texts``."""
    return sorted({redact(secret) for secret in secrets for text in texts if secret in text})


def _uses_db(item: pytest.Item) -> bool:
    if _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    if item.get_closest_marker("django_db") is not None:
        return True
    cls = getattr(item, "cls", None)
    return cls is not None and issubclass(cls, TransactionTestCase)


def _model_rows_with(model: type[models.Model], secrets: set[str]) -> bool:
    fields = [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, (*_TEXT_FIELDS, models.JSONField))
    ]
    if not fields:
        return False
    rows = model._base_manager.using(router.db_for_read(model))
    # JSON is compared through its text form, which SQLite and PostgreSQL both give by a cast.
    rows = rows.annotate(
        **{
            f"_leak_{field.attname}": Cast(field.attname, models.TextField())
            for field in fields
            if isinstance(field, models.JSONField)
        }
    )
    condition = models.Q()
    for field in fields:
        column = field.attname if isinstance(field, _TEXT_FIELDS) else f"_leak_{field.attname}"
        for secret in secrets:
            condition |= models.Q(**{f"{column}__contains": secret})
    return rows.filter(condition).exists()


def _sessions_with(model: type[AbstractBaseSession], secrets: set[str]) -> bool:
    texts = [
        json.dumps(session.get_decoded(), default=str) for session in model._base_manager.all()
    ]
    return bool(find_leaks(texts, secrets))


def database_leaks(secrets: set[str]) -> list[str]:
    """The labels of the models with a row that holds one of ``secrets``."""
    if any(conn.needs_rollback for conn in connections.all(initialized_only=True)):
        return []  # the test broke its transaction: nothing of it will be kept
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        if _model_rows_with(model, secrets) or (
            issubclass(model, AbstractBaseSession) and _sessions_with(model, secrets)
        ):
            found.append(model._meta.label)
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    handler = RecordingHandler()
    root = logging.getLogger()
    item.stash[_HANDLER] = (handler, root.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    secrets = _issued_tokens(item)
    item.stash[_SECRETS] = secrets
    if secrets and _uses_db(item):
        tables = database_leaks(secrets)
        assert not tables, f"raw access token(s) stored in the database: {', '.join(tables)}"
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        result = yield
    finally:
        handler, level = item.stash[_HANDLER]
        root = logging.getLogger()
        root.removeHandler(handler)
        root.setLevel(level)
    secrets = _issued_tokens(item)
    leaked = find_leaks(handler.texts, secrets)
    assert not leaked, f"raw access token(s) {', '.join(leaked)} appeared in a log record"
    return result
