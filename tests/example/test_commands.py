"""The example shop's management commands: ``seed_shop``, and no missing migration."""

from __future__ import annotations

from pathlib import Path

from .shop_process import manage, run_in_shop


def test_seed_shop_is_idempotent(tmp_path: Path) -> None:
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'seed.sqlite3'}"}
    manage("migrate", "--noinput", "-v", "0", overrides=database)

    first = manage("seed_shop", overrides=database).stdout
    assert "Created admin user admin/admin." in first
    assert "Products: 3 created, 0 updated." in first

    second = manage("seed_shop", overrides=database).stdout
    assert "Admin user 'admin' exists: left as it is." in second
    assert "Products: 0 created, 3 updated." in second

    check = (
        "from django.contrib.auth import authenticate; from shop.models import Product; "
        "user = authenticate(username='admin', password='admin'); "
        "print(user.is_superuser, user.is_staff, Product.objects.count())"
    )
    assert manage("shell", "-v", "0", "-c", check, overrides=database).stdout.split() == [
        "True",
        "True",
        "3",
    ]


def test_seed_shop_refuses_without_debug(tmp_path: Path) -> None:
    production = {
        "DEBUG": "off",
        "SECRET_KEY": "marker-secret-key-0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'seed.sqlite3'}",
    }
    result = run_in_shop("manage.py", "seed_shop", "--skip-checks", overrides=production)
    assert result.returncode != 0
    assert "seed_shop creates the password admin/admin: it runs with DEBUG on." in result.stderr


def test_the_shop_has_no_missing_migrations(tmp_path: Path) -> None:
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}"}
    manage("makemigrations", "--check", "--dry-run", "shop", overrides=database)
