"""State file round trip, the command line and the import-time independence from Django."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from django_pi_payments.sandbox import SandboxServer, build_parser, main, wire
from django_pi_payments.sandbox.cli import is_loopback
from django_pi_payments.testing import SandboxHandle


def handle(server: SandboxServer) -> SandboxHandle:
    return SandboxHandle(server.url, server.api_key, server.network)


def relinked(payments: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = wire.loads(wire.dumps(payments).replace(old, new))
    return loaded


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "sandbox.json"
    with SandboxServer(state_file=path, latency_ms=0) as first:
        sb = handle(first)
        config = sb.set_config(duplicate_approve_error="already_approved", latency_ms=5)
        user, token = sb.login(username="carol")
        identifier = sb.create_payment(
            user["uid"], "1.0000001", metadata={"price": Decimal("0.1")}
        )["identifier"]
        key = {"Authorization": f"Key {first.api_key}"}
        requests.post(f"{first.url}/v2/payments/{identifier}/approve", headers=key, timeout=5)
        txid = sb.submit_transaction(identifier)["txid"]
        payments, ledger, users = sb.payments(), sb.ledger(), sb.request("GET", "/sandbox/users")
        old_url = first.url
    assert [p.name for p in path.parent.iterdir()] == ["sandbox.json"]  # no temporary left

    with SandboxServer(state_file=path, latency_ms=0) as second:
        sb = handle(second)
        assert sb.payments() == relinked(payments, old_url, second.url)
        assert sb.payments()[0]["amount"] == Decimal("1.0000001")
        assert sb.ledger() == ledger
        assert sb.request("GET", "/sandbox/users") == users
        assert sb.set_config() == {**config, "latency_ms": 0}  # the command line wins
        me = requests.get(
            f"{second.url}/v2/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert me.json()["uid"] == user["uid"]
        key = {"Authorization": f"Key {second.api_key}"}
        done = requests.post(
            f"{second.url}/v2/payments/{identifier}/complete",
            json={"txid": txid},
            headers=key,
            timeout=5,
        )
        assert done.json()["status"]["developer_completed"] is True
        sb.reset(config=True)
        assert sb.set_config()["duplicate_approve_error"] == "already_approved"


def test_unknown_state_file_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 99}')
    with pytest.raises(ValueError, match="version"):
        SandboxServer(state_file=path)


@pytest.mark.parametrize(
    "content",
    [
        "garbage",
        "[]",
        '{"version": 99}',
        '{"version": 1, "config": {}}',
        '{"version": 1, "config": 5}',
    ],
)
def test_main_refuses_a_state_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    assert main(["--port", "0", "--state-file", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"cannot use its state file {path}" in error
    assert "Traceback" not in error


def test_main_refuses_a_state_file_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain-file").write_text("")
    path = tmp_path / "plain-file" / "state.json"
    assert main(["--port", "0", "--state-file", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"cannot use its state file {path}" in error
    assert "listen" not in error


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "django_pi_payments.sandbox", "--port", "0"]
    command += ["--state-file", str(tmp_path / "s.json"), "--api-key", "k", "--latency-ms", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+) \(Horizon: \1/horizon\)", line)
        assert match, line
        response = requests.get(
            f"{match.group(1)}/v2/payments/incomplete_server_payments",
            headers={"Authorization": "Key k"},
            timeout=5,
        )
        assert response.json() == {"incomplete_server_payments": []}
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "stopped" in rest
    assert (tmp_path / "s.json").exists()


def test_main_refuses_a_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_main_stops_on_keyboard_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: SandboxServer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(SandboxServer, "serve_forever", interrupted)
    out = io.StringIO()
    assert main(["--port", "0", "--network", "Pi Network"], stdout=out) == 0
    assert "listening on http://127.0.0.1:" in out.getvalue()


def test_parser_defaults() -> None:
    options = build_parser().parse_args([])
    assert (options.host, options.port, options.latency_ms) == ("127.0.0.1", 8765, 0)
    assert (options.api_key, options.network) == ("sandbox-api-key", "Pi Testnet")
    assert (options.state_file, options.approval_timeout, options.allow_remote) == (
        None,
        60.0,
        False,
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_ipv6_loopback_server() -> None:
    with SandboxServer("::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert requests.get(f"{server.horizon_url}/", timeout=5).status_code == 200


def test_modules_import_without_django_or_third_party_packages() -> None:
    code = (
        "import sys, django_pi_payments.testing, django_pi_payments.sandbox.server;"
        "bad = {'django', 'requests', 'stellar_sdk'} & set(sys.modules);"
        "sys.exit(sorted(bad) or 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


def test_main_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "99999"]) == 2
    assert "--port must be from 0 to 65535." in capsys.readouterr().err
