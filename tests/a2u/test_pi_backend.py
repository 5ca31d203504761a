"""The official Pi Node.js SDK, npm ``pi-backend@0.1.3``, against the sandbox.

Proves that the sandbox speaks Pi's wire protocol to a client we did not write: every method of
the SDK, with its hard-coded Horizon calls sent to the sandbox through ``HTTPS_PROXY`` as
PI_PLATFORM_API.md §8.3 shows. The package is installed once into a cache directory outside the
repository (``$PI_BACKEND_DIR``, default ``~/.cache/django-pi-payments/pi-backend-0.1.3``). The
test is skipped, saying why, when ``node`` or ``npm`` is missing or the install fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from stellar_sdk import Keypair

from django_pi_payments.testing import SandboxHandle

PACKAGE = "pi-backend"
VERSION = "0.1.3"
SCRIPT = Path(__file__).with_name("pi_backend_check.js")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def install_dir() -> Path:
    """Where the package is installed: ``$PI_BACKEND_DIR`` or the user's cache directory."""
    configured = os.environ.get("PI_BACKEND_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "django-pi-payments" / f"{PACKAGE}-{VERSION}"


def installed_version(directory: Path) -> str | None:
    manifest = directory / "node_modules" / PACKAGE / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="session")
def pi_backend() -> Path:
    """The ``node_modules`` directory holding pi-backend@0.1.3 (installed on first use)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"pi-backend@{VERSION} check skipped: {' and '.join(missing)} not on PATH "
            "(install Node.js to run the official Pi SDK against the sandbox)"
        )
    directory = install_dir()
    if installed_version(directory) != VERSION:
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(directory),
            f"{PACKAGE}@{VERSION}",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip(f"pi-backend@{VERSION} check skipped: npm install timed out after 300 s")
        if done.returncode != 0 or installed_version(directory) != VERSION:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            pytest.skip(f"pi-backend@{VERSION} check skipped: npm install failed: {tail}")
    return directory / "node_modules"


def run_script(node_modules: Path, sandbox: SandboxHandle, seed: str, uid: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env |= {
        "NODE_PATH": str(node_modules),
        # stellar-sdk's axios sends the Horizon calls (https://api.testnet.minepi.com/...) to
        # the proxy in absolute form; the sandbox routes them to its Horizon.
        "HTTPS_PROXY": sandbox.url,
        "https_proxy": sandbox.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    config = {"baseUrl": sandbox.url, "apiKey": sandbox.api_key, "seed": seed, "uid": uid}
    done = subprocess.run(
        ["node", str(SCRIPT), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def identifiers(wrapper: Any) -> list[str]:
    assert isinstance(wrapper, dict) and list(wrapper) == ["incomplete_server_payments"]
    return [payment["identifier"] for payment in wrapper["incomplete_server_payments"]]


def test_every_pi_backend_method_against_the_sandbox(
    pi_backend: Path, pi_sandbox: SandboxHandle
) -> None:
    wallet = Keypair.random()
    pi_sandbox.set_config(app_wallet_address=wallet.public_key)
    uid = pi_sandbox.create_user(username="pi_backend_payee")["uid"]

    result = run_script(pi_backend, pi_sandbox, wallet.secret, uid)

    payment_id, txid = result["paymentId"], result["txid"]
    assert re.fullmatch(r"[A-Za-z0-9]{28}", payment_id)
    assert identifiers(result["incompleteBefore"]) == [payment_id]
    assert re.fullmatch(r"[0-9a-f]{64}", txid)
    ledger = [tx for tx in pi_sandbox.ledger() if tx["memo"] == payment_id]
    assert [(tx["hash"], tx["source_account"], tx["amount"]) for tx in ledger] == [
        (txid, wallet.public_key, Decimal("1.5"))
    ]
    for answer in (result["completed"], result["fetched"]):
        assert answer["identifier"] == payment_id
        assert answer["direction"] == "app_to_user"
        assert answer["status"]["developer_completed"] is True
        assert answer["transaction"]["txid"] == txid
    assert identifiers(result["incompleteAfter"]) == [result["secondId"]]
    assert result["cancelled"]["identifier"] == result["secondId"]
    assert result["cancelled"]["status"]["cancelled"] is True
    assert pi_sandbox.payment(payment_id)["status"]["developer_completed"] is True

    routes = [call["route"] for call in pi_sandbox.calls()]
    assert {"horizon_account", "horizon_fee_stats", "horizon_submit"} <= set(routes)
    assert routes.count("create_payment") == 2
    for route in ("complete", "get_payment", "cancel", "incomplete_server_payments"):
        assert route in routes
    assert {call["auth"] for call in pi_sandbox.calls() if call["path"].startswith("/v2")} == {
        "key"
    }
