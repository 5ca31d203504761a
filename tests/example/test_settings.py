"""The example shop's settings: every variable of ``.env.example`` is read, and takes effect.

The settings module runs in a subprocess (the suite itself runs under ``tests.settings``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .shop_process import EXAMPLE_DIR, SHOP_VARIABLES, run_in_shop

ENV_EXAMPLE = EXAMPLE_DIR / ".env.example"
SETTINGS_FILE = EXAMPLE_DIR / "config" / "settings.py"

# Prints the settings the variables feed, as JSON.
PROBE = """
import json
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "SECRET_KEY": settings.SECRET_KEY,
    "DEBUG": settings.DEBUG,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": settings.CSRF_TRUSTED_ORIGINS,
    "DATABASE": [database["ENGINE"], database["NAME"], database.get("HOST", "")],
    "PI_PAYMENTS": settings.PI_PAYMENTS,
    "PI_SANDBOX": settings.PI_SANDBOX,
    "PI_SDK_URL": settings.PI_SDK_URL,
}))
"""

# variable: (marker value, setting it feeds, what that setting must then be)
MARKERS: dict[str, tuple[str, str, Any]] = {
    "SECRET_KEY": ("marker-secret-key-0123456789", "SECRET_KEY", "marker-secret-key-0123456789"),
    "DEBUG": ("off", "DEBUG", False),
    "ALLOWED_HOSTS": (
        "marker.example,www.marker.example",
        "ALLOWED_HOSTS",
        ["marker.example", "www.marker.example"],
    ),
    "CSRF_TRUSTED_ORIGINS": (
        "https://marker.example",
        "CSRF_TRUSTED_ORIGINS",
        ["https://marker.example"],
    ),
    "DATABASE_URL": (
        "postgres://marker:secret@db.marker.example:5433/markerdb",
        "DATABASE",
        ["django.db.backends.postgresql", "markerdb", "db.marker.example"],
    ),
    "PI_API_KEY": ("marker-api-key", "PI_PAYMENTS.API_KEY", "marker-api-key"),
    "PI_API_BASE_URL": (
        "https://api.marker.example",
        "PI_PAYMENTS.API_BASE_URL",
        "https://api.marker.example",
    ),
    "PI_NETWORK": ("Pi Network", "PI_PAYMENTS.NETWORK", "Pi Network"),
    "PI_HORIZON_URL": (
        "https://horizon.marker.example",
        "PI_PAYMENTS.HORIZON_URL",
        "https://horizon.marker.example",
    ),
    # On although the API is not on loopback: the pages load that host's sandbox script.
    "PI_SANDBOX": ("on", "PI_SDK_URL", "https://api.marker.example/sandbox/pi-sdk.js"),
}


def documented_variables() -> list[str]:
    """The ``NAME=`` lines of ``.env.example``, in order."""
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)


def probe(variables: dict[str, str]) -> dict[str, Any]:
    """The settings as the example project computes them from ``variables``."""
    result = run_in_shop("-c", PROBE, overrides=variables)
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def setting(settings: dict[str, Any], dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = value[part]
    return value


def test_every_documented_variable_is_read_by_the_settings() -> None:
    documented = documented_variables()
    source = SETTINGS_FILE.read_text()
    read = re.findall(r'\benv_(?:str|bool|list)\(\s*"([A-Z][A-Z0-9_]*)"', source)
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert set(documented) == set(read), "the settings and .env.example disagree"
    assert set(documented) == set(SHOP_VARIABLES) == set(MARKERS)


def test_every_documented_variable_has_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            assert lines[index - 1].startswith("# "), f"{line!r} has no comment above it"
            assert line.endswith("="), f"{line!r}: the example leaves values empty (defaults)"


def test_every_variable_takes_effect() -> None:
    settings = probe({name: value for name, (value, _, _) in MARKERS.items()})
    for name, (_value, dotted, expected) in MARKERS.items():
        assert setting(settings, dotted) == expected, f"{name} did not reach {dotted}"


def test_empty_variables_mean_the_embedded_defaults() -> None:
    settings = probe({})  # every variable of .env.example set to "", as in the file itself

    assert settings["DEBUG"] is True
    assert settings["SECRET_KEY"].startswith("django-insecure-")
    assert settings["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert settings["CSRF_TRUSTED_ORIGINS"] == []
    assert settings["DATABASE"][:2] == [
        "django.db.backends.sqlite3",
        str(EXAMPLE_DIR / "db.sqlite3"),
    ]
    assert settings["PI_PAYMENTS"] == {
        "API_KEY": "sandbox-api-key",
        "API_BASE_URL": "http://127.0.0.1:8765",
        "NETWORK": "Pi Testnet",
        "HORIZON_URL": "http://127.0.0.1:8765/horizon",
        "APPROVAL_CHECK": "shop.payments.check_order",
    }
    assert settings["PI_SANDBOX"] is True
    assert settings["PI_SDK_URL"] == "http://127.0.0.1:8765/sandbox/pi-sdk.js"


def test_a_real_pi_api_gets_the_real_sdk_and_no_default_key() -> None:
    settings = probe({"PI_API_BASE_URL": "https://api.minepi.com/"})

    assert settings["PI_SANDBOX"] is False
    assert settings["PI_SDK_URL"] == "https://sdk.minepi.com/pi-sdk.js"
    assert settings["PI_PAYMENTS"]["API_BASE_URL"] == "https://api.minepi.com"
    assert settings["PI_PAYMENTS"]["API_KEY"] is None
    assert settings["PI_PAYMENTS"]["HORIZON_URL"] is None  # derived from NETWORK by the app


@pytest.mark.parametrize("url", ["http://localhost:9000", "http://[::1]:8765"])
def test_any_loopback_api_means_the_sandbox(url: str) -> None:
    assert probe({"PI_API_BASE_URL": url})["PI_SDK_URL"] == f"{url}/sandbox/pi-sdk.js"


def test_production_without_a_secret_key_is_refused() -> None:
    result = run_in_shop("-c", PROBE, overrides={"DEBUG": "off"})
    assert result.returncode != 0
    assert "Set SECRET_KEY in the environment: DEBUG is off." in result.stderr


def test_production_without_an_api_key_fails_the_system_checks() -> None:
    production = {
        "DEBUG": "off",
        "SECRET_KEY": "marker-secret-key-0123456789",
        "PI_API_BASE_URL": "https://api.minepi.com",
    }
    result = run_in_shop("manage.py", "check", overrides=production)
    assert result.returncode != 0
    assert "pi_payments.E001" in result.stderr
