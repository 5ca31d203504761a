"""``manage.py pi_sandbox`` serves the simulator and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serves_until_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "pi_sandbox", "--port", str(port), "--latency-ms", "1"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/config") as answer:
                    config = json.load(answer)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert config["latency_ms"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_refuses_a_remote_host():
    with pytest.raises(CommandError, match="refused"):
        call_command("pi_sandbox", "--host", "0.0.0.0", "--port", "0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "65536"], "--port must be from 0 to 65535"),
        (["--port", "-1"], "--port must be from 0 to 65535"),
        (["--latency-ms", "-5"], "latency_ms"),
        (["--approval-timeout", "-1"], "approval_timeout"),
        (["--approval-timeout", "nan"], "approval_timeout"),
        (["--approval-timeout", "inf"], "approval_timeout"),
        (["--latency-ms", "100000000000000"], "latency_ms"),
    ],
)
def test_bad_option_values_are_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("pi_sandbox", "--port", "0", *args)


def test_an_unreadable_state_file_is_a_command_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("garbage")
    with pytest.raises(CommandError, match="cannot use its state file"):
        call_command("pi_sandbox", "--port", "0", "--state-file", str(path))


def test_a_port_in_use_is_a_command_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"could not listen on 127.0.0.1:{port}"):
            call_command("pi_sandbox", "--port", str(port))


def test_allowed_origins_and_hosts_reach_the_sandbox():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--allow-origin", "http://192.168.1.20:8000", "--allow-host", "sandbox"]
        with pytest.raises(CommandError, match="could not listen"):
            call_command("pi_sandbox", "--port", str(port), *options)


def test_a_malformed_allowed_origin_is_a_command_error():
    with pytest.raises(CommandError, match="is not an origin"):
        call_command("pi_sandbox", "--port", "0", "--allow-origin", "shop.example")
