"""Site users for Pi users: safe unique usernames, and concurrent first sign-ins."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from django_pi_payments.auth import generate_username, sync_pi_user
from django_pi_payments.dto import UserDTO
from django_pi_payments.models import PiUser

User = get_user_model()
FIELD = User.USERNAME_FIELD
MAX_LENGTH = User._meta.get_field(FIELD).max_length


def pioneer(username: str = "", uid: str = "5f0c7c4e-1a2b-4c3d-8e9f-001122334455") -> UserDTO:
    return UserDTO(uid=uid, username=username, scopes=("username", "payments"))


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "pi_alice"),
        ("Alice.B-2_x", "pi_Alice.B-2_x"),
        ("a b<script>é", "pi_abscript"),
        ("", "pi_5f0c7c4e-1a2"),
        ("ü", "pi_5f0c7c4e-1a2"),
    ],
)
def test_username_is_sanitised(db, username, expected):
    assert generate_username(pioneer(username)) == expected


def test_username_collisions_get_a_suffix(db):
    User.objects.create(**{FIELD: "pi_alice"})
    assert generate_username(pioneer("alice")) == "pi_alice_2"
    User.objects.create(**{FIELD: "PI_ALICE_2"})  # compared case-insensitively
    assert generate_username(pioneer("alice")) == "pi_alice_3"
    for number in range(3, 10):
        User.objects.create(**{FIELD: f"pi_alice_{number}"})
    random_name = generate_username(pioneer("alice"))
    assert random_name.startswith("pi_alice_")
    assert len(random_name) == len("pi_alice_") + 8


def test_username_fits_the_field(db):
    long_name = "x" * (MAX_LENGTH + 50)
    name = generate_username(pioneer(long_name))
    assert len(name) == MAX_LENGTH
    User.objects.create(**{FIELD: name})
    second = generate_username(pioneer(long_name))
    assert len(second) == MAX_LENGTH
    assert second.endswith("_2")


def test_sync_creates_once_and_updates(db):
    first = sync_pi_user(pioneer("alice"))
    again = sync_pi_user(UserDTO(uid=first.uid, username="alice2", scopes=("payments",)))
    assert again.pk == first.pk
    assert again.username == "alice2"
    assert again.scopes == ["payments"]
    assert User.objects.count() == 1


def test_concurrent_first_sign_ins_of_one_uid(transactional_db):
    """Eight threads sign the same new uid in at once: one PiUser, one user, no error.

    On SQLite too, where each read-then-write transaction takes the database's write lock first
    and so waits for the others instead of failing with "database is locked"."""
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def sign_in() -> None:
        try:
            barrier.wait()
            results.append(sync_pi_user(pioneer("racer")).pk)
        except Exception as exc:  # recorded, asserted below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1, results
    assert PiUser.objects.count() == 1
    assert User.objects.count() == 1
