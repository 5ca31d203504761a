"""Verify Pi access tokens with ``GET /v2/me`` and keep the matching :class:`PiUser` up to date.

:func:`verify_access_token` is the one verification used by the Django backend, the DRF
authentication class and the views. It:

1. asks Pi (``PiClient.me``) who the token belongs to, unless Django's default cache holds a recent
   answer under ``pi_payments:me:<sha256 of the token>``. An answer is cached for at most
   ``ME_CACHE_SECONDS`` and never past the token's ``valid_until``; a token Pi reports as already
   expired is not cached at all. A failing cache is logged and bypassed, never fatal;
2. creates or updates the :class:`PiUser` and, for a new Pi uid, finds its site user through the
   ``USER_MAPPER`` hook or creates one (only when ``CREATE_USERS`` is set);
3. sends :data:`~django_pi_payments.signals.pi_user_authenticated` once the transaction commits,
   whenever Pi itself confirmed the token (not for answers served from the cache).

The raw token is never stored, logged or used as a cache key: only its SHA-256 digest is. Nor is
it shown in a traceback: the functions holding it mark it with ``sensitive_variables``, which
Django's exception reporter filter honours (see docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from .client import get_client, is_sendable_credential
from .conf import pi_settings
from .dto import UserDTO
from .exceptions import MissingScope, PaymentError, PiAPIError, PiUnauthorized
from .locking import write_first
from .logs import Occasionally
from .models import PiUser
from .signals import pi_user_authenticated

if TYPE_CHECKING:
    from django.contrib.auth.models import _User

    #: ``USER_MAPPER``: the site user for a verified Pi user, or ``None`` for the default.
    UserMapper = Callable[[UserDTO, HttpRequest | None], _User | None]

logger = logging.getLogger("django_pi_payments.auth")
# A cache outage fails every token check: its warnings when it starts, then once a minute.
cache_failure_lines = Occasionally(60)

ME_CACHE_KEY_PREFIX = "pi_payments:me:"
# Longer than any token Pi issues, short enough to keep oversized input away from Pi and the cache.
MAX_TOKEN_LENGTH = 4096

# Error codes (not secrets).
TOKEN_EXPIRED = "token_expired"  # noqa: S105
INVALID_TOKEN = "invalid_token"  # noqa: S105
USER_NOT_ALLOWED = "user_not_allowed"

_USERNAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_UPSERT_ATTEMPTS = 3


class PiAuthenticationError(PaymentError):
    """A Pi access token was refused (401).

    ``code`` is ``token_expired`` (Pi says the token expired), ``invalid_token`` (forged, revoked,
    malformed or otherwise refused by Pi) or ``user_not_allowed`` (the token is valid but this
    site has no user for it and may not create one, or the user is inactive).
    """

    status_code = 401
    default_code = INVALID_TOKEN


def _refuse(code: str, message: str | Promise) -> PiAuthenticationError:
    return PiAuthenticationError(str(message), code=code)


@sensitive_variables("access_token")
def me_cache_key(access_token: str) -> str:
    """The cache key for a token's ``/me`` answer: ``pi_payments:me:`` + SHA-256 hex digest."""
    digest = hashlib.sha256(access_token.encode("utf-8")).hexdigest()
    return ME_CACHE_KEY_PREFIX + digest


def _check_token_format(access_token: str) -> None:
    # Visible ASCII only: a token with spaces or control characters cannot be sent as a header.
    if (
        not access_token
        or len(access_token) > MAX_TOKEN_LENGTH
        or not is_sendable_credential(access_token)
    ):
        raise _refuse(INVALID_TOKEN, _("The Pi access token is malformed."))


def _cached_answer(key: str) -> UserDTO | None:
    """The cached ``/me`` answer, if the cache is on, there is one and its token has not expired
    since. ``ME_CACHE_SECONDS`` set to 0 also ends the answers cached before."""
    if not pi_settings.ME_CACHE_SECONDS:
        return None
    try:
        data = cache.get(key)
    except Exception as exc:  # any cache backend failure: ask Pi instead
        cache_failure_lines.log(
            logger,
            logging.WARNING,
            "read",
            "Pi /me cache read failed (%s); asking Pi.",
            type(exc).__name__,
        )
        return None
    if data is None:
        return None
    try:
        answer = UserDTO.from_json(data)
    except ValueError:
        return None
    if answer.valid_until is None or answer.valid_until <= timezone.now():
        return None
    return answer


def _cache_seconds(answer: UserDTO) -> int:
    """How long ``answer`` may be cached: ``ME_CACHE_SECONDS``, cut short by the token's expiry."""
    limit = pi_settings.ME_CACHE_SECONDS
    if not limit or answer.valid_until is None:
        return 0
    remaining = math.floor((answer.valid_until - timezone.now()).total_seconds())
    return max(0, min(int(limit), remaining))


def _store_answer(key: str, answer: UserDTO) -> None:
    seconds = _cache_seconds(answer)
    if seconds <= 0:
        return
    try:
        cache.set(key, answer.raw, seconds)
    except Exception as exc:  # any cache backend failure: the next request asks Pi again
        cache_failure_lines.log(
            logger, logging.WARNING, "write", "Pi /me cache write failed (%s).", type(exc).__name__
        )


@sensitive_variables("access_token")
def _ask_pi(access_token: str) -> UserDTO:
    try:
        return get_client().me(access_token)
    except PiUnauthorized as exc:
        if "expired" in exc.code:
            raise _refuse(TOKEN_EXPIRED, _("The Pi access token has expired.")) from None
        raise _refuse(INVALID_TOKEN, _("Pi refused the access token.")) from None
    except PiAPIError as exc:
        # Pi refuses a bad token with 401. Any other answer (a firewall's 403) says nothing
        # about the token, and is not the user's to fix.
        logger.warning("Pi answered a token check with %s %s.", exc.status, exc.code)
        raise


# Also hides the token in the frames of _check_token_format and me_cache_key called from here.
@sensitive_variables("access_token")
def fetch_pi_user_data(
    access_token: str, *, before_asking_pi: Callable[[], None] | None = None
) -> tuple[UserDTO, bool]:
    """Who ``access_token`` belongs to, per Pi: ``(answer, fresh)``.

    ``fresh`` is true when Pi was asked, false when the answer came from the cache.
    ``before_asking_pi`` is called when Pi is about to be asked; it may raise to refuse.
    Raises :class:`PiAuthenticationError` when the token is malformed or Pi refuses it (401),
    :class:`~django_pi_payments.exceptions.PiUnavailable` when Pi cannot be reached, and
    :class:`~django_pi_payments.exceptions.PiAPIError` when Pi answers with another error.
    """
    _check_token_format(access_token)
    key = me_cache_key(access_token)
    cached = _cached_answer(key)
    if cached is not None:
        return cached, False
    if before_asking_pi is not None:
        before_asking_pi()
    answer = _ask_pi(access_token)
    _store_answer(key, answer)
    return answer, True


def _username_candidates(stem: str, max_length: int) -> Iterator[str]:
    def fit(suffix: str) -> str:
        return (stem[: max(0, max_length - len(suffix))] + suffix)[:max_length]

    yield fit("")
    for number in range(2, 10):
        yield fit(f"_{number}")
    while True:
        yield fit(f"_{secrets.token_hex(4)}")


def generate_username(user_data: UserDTO) -> str:
    """A free username for a new site user: ``pi_<Pi username>``, or ``pi_<uid prefix>``.

    Only ``A-Z a-z 0-9 _ . -`` are kept. On a (case-insensitive) collision ``_2`` to ``_9`` and then
    random suffixes are tried. The result fits the user model's ``USERNAME_FIELD``.
    """
    user_model = get_user_model()
    field_name = user_model.USERNAME_FIELD
    max_length = getattr(user_model._meta.get_field(field_name), "max_length", None) or 150
    name = _USERNAME_UNSAFE_RE.sub("", user_data.username)
    stem = "pi_" + (name or _USERNAME_UNSAFE_RE.sub("", user_data.uid)[:12])
    users = user_model._default_manager
    return next(
        candidate
        for candidate in _username_candidates(stem, max_length)
        if not users.filter(**{f"{field_name}__iexact": candidate}).exists()
    )


def _create_user(user_data: UserDTO) -> _User:
    user_model = get_user_model()
    user = user_model(**{user_model.USERNAME_FIELD: generate_username(user_data)})
    user.set_unusable_password()
    user.save()
    return user


def _user_for_new_pi_user(user_data: UserDTO, request: HttpRequest | None, using: str) -> _User:
    mapper: UserMapper | None = pi_settings.USER_MAPPER
    if mapper is not None:
        mapped = mapper(user_data, request)
        if mapped is not None:
            if PiUser.objects.using(using).filter(user=mapped).exists():
                logger.warning(
                    "USER_MAPPER mapped Pi uid %s to user %s, already linked to another Pi user.",
                    user_data.uid,
                    mapped.pk,
                )
                raise _refuse(
                    USER_NOT_ALLOWED, _("This account is already linked to another Pi user.")
                )
            return mapped
    if not pi_settings.CREATE_USERS:
        raise _refuse(USER_NOT_ALLOWED, _("This Pi user has no account on this site."))
    return _create_user(user_data)


def _stored_pi_user(using: str, uid: str, *, for_update: bool = False) -> PiUser | None:
    """The :class:`PiUser` of ``uid`` with its user, locked ``for_update``; ``None`` if new.

    The uid is unique: the rows are read without the ``ORDER BY`` of ``first()``, which cost
    more CPU to compile than the read itself.
    """
    queryset = PiUser.objects.using(using).select_related("user").filter(uid=uid)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    found = list(queryset)
    return found[0] if found else None


def _upsert(user_data: UserDTO, request: HttpRequest | None, using: str) -> PiUser:
    write_first(PiUser.objects.using(using).filter(uid=user_data.uid), "uid")
    pi_user = _stored_pi_user(using, user_data.uid, for_update=True)
    if pi_user is None:
        return PiUser.objects.using(using).create(
            user=_user_for_new_pi_user(user_data, request, using),
            uid=user_data.uid,
            username=user_data.username,
            scopes=list(user_data.scopes),
            token_valid_until=user_data.valid_until,
        )
    changes = _changes(pi_user, user_data)
    if changes:
        for name, value in changes.items():
            setattr(pi_user, name, value)
        pi_user.save(using=using, update_fields=[*changes, "updated_at"])
    return pi_user


def _changes(pi_user: PiUser, user_data: UserDTO) -> dict[str, object]:
    """The fields of ``pi_user`` that differ from Pi's answer, with Pi's values."""
    fresh_values = {
        # Without the ``username`` scope Pi sends no username: keep the one we know.
        "username": user_data.username or pi_user.username,
        "scopes": list(user_data.scopes),
        "token_valid_until": user_data.valid_until,
    }
    return {name: value for name, value in fresh_values.items() if getattr(pi_user, name) != value}


def _unchanged_pi_user(user_data: UserDTO) -> PiUser | None:
    """The stored :class:`PiUser` when it already holds ``user_data``, read without a lock.

    The usual case for an answer from the cache: the row was brought up to date when Pi gave
    that answer, so one read replaces a locked read-compare-write transaction.
    """
    pi_user = _stored_pi_user(router.db_for_write(PiUser), user_data.uid)
    if pi_user is None or _changes(pi_user, user_data):
        return None
    return pi_user


def sync_pi_user(user_data: UserDTO, *, request: HttpRequest | None = None) -> PiUser:
    """Create or update the :class:`PiUser` for a verified Pi user, and return it.

    A new uid gets the user returned by the ``USER_MAPPER`` hook or, when that gives ``None``,
    a new site user if ``CREATE_USERS`` is set; otherwise :class:`PiAuthenticationError`
    (``user_not_allowed``). Concurrent first sign-ins of one uid are safe: the loser of the race
    retries and finds the winner's row.
    """
    using = router.db_for_write(PiUser)
    attempts_left = _UPSERT_ATTEMPTS
    while True:
        attempts_left -= 1
        try:
            with transaction.atomic(using=using):
                return _upsert(user_data, request, using)
        except IntegrityError:
            if not attempts_left:
                raise
            logger.info("Concurrent sign-in of Pi uid %s; retrying.", user_data.uid)


@sensitive_variables("access_token")
def verify_access_token(
    access_token: str,
    *,
    request: HttpRequest | None = None,
    before_asking_pi: Callable[[], None] | None = None,
) -> PiUser:
    """Verify a Pi access token and return its up-to-date :class:`PiUser` (``.user`` loaded).

    ``request`` is the Django request, passed on to ``USER_MAPPER`` and to the
    ``pi_user_authenticated`` receivers; ``before_asking_pi`` goes to
    :func:`fetch_pi_user_data`. Raises :class:`PiAuthenticationError` (401) when the token
    is expired (``token_expired``), refused (``invalid_token``) or has no usable site user
    (``user_not_allowed``), :class:`~django_pi_payments.exceptions.PiUnavailable` when Pi
    cannot be reached, and :class:`~django_pi_payments.exceptions.PiAPIError` when Pi answers
    the check with an error other than 401.
    """
    user_data, fresh = fetch_pi_user_data(access_token, before_asking_pi=before_asking_pi)
    pi_user = None if fresh else _unchanged_pi_user(user_data)
    if pi_user is None:
        pi_user = sync_pi_user(user_data, request=request)
    if not getattr(pi_user.user, "is_active", True):
        raise _refuse(USER_NOT_ALLOWED, _("This account is disabled."))
    if fresh:
        transaction.on_commit(
            partial(pi_user_authenticated.send, sender=PiUser, pi_user=pi_user, request=request),
            using=router.db_for_write(PiUser),
        )
    return pi_user


def require_scope(pi_user: PiUser, scope: str) -> None:
    """Raise :class:`~django_pi_payments.exceptions.MissingScope` (403) unless ``pi_user`` granted
    ``scope`` at the last verification; e.g. ``require_scope(pi_user, "payments")`` before approval.
    """
    if not pi_user.has_scope(scope):
        message = _(
            "The Pi user has not granted the “%(scope)s” scope: sign in again with "
            "Pi.authenticate() asking for it."
        )
        raise MissingScope(str(message) % {"scope": scope})
