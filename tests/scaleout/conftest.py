"""Two gunicorn instances, pi_reconcile processes, and what they need: PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture
def shared_services(transactional_db: None) -> None:
    """PostgreSQL and Redis, as in production.

    The SQLite pass of ``make test`` skips these tests: they run in its PostgreSQL pass, where a
    missing Redis skips them on a developer's machine and fails them under CI.
    """
    if connection.vendor != "postgresql":
        pytest.skip("multi-process tests run on PostgreSQL: `make test-postgres` (DATABASE_URL)")
    _require(
        bool(os.environ.get("REDIS_URL")),
        "multi-process tests need Redis: install redis-server (REDIS_URL, scripts/with-redis.sh)",
    )


def _database_url() -> str:
    params = connection.settings_dict
    user = quote(params.get("USER") or "")
    password = quote(params.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{params['HOST']}:{params['PORT']}/{params['NAME']}"


@dataclass
class Cluster:
    """The environment shared by the child processes, and their signal log."""

    env: dict[str, str]
    signal_log: Path

    def signals(self) -> Counter[tuple[str, str]]:
        """``(signal, identifier)`` counts over every child process."""
        if not self.signal_log.exists():
            return Counter()
        lines = self.signal_log.read_text().splitlines()
        return Counter((name, identifier) for _pid, name, identifier in map(str.split, lines))

    def run(self, *argv: str, env: dict[str, str] | None = None) -> str:
        """Run ``python -m django ARGV`` to the end; its stdout and stderr together."""
        result = subprocess.run(
            [sys.executable, "-m", "django", *argv],
            env=env or self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        return result.stdout + result.stderr

    def manage(self, *argv: str) -> subprocess.Popen[str]:
        """Start ``python -m django ARGV`` in the cluster's environment."""
        return subprocess.Popen(
            [sys.executable, "-m", "django", *argv],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cluster(shared_services: None, pi_settings_for_sandbox, tmp_path: Path) -> Cluster:
    pi_sandbox = pi_settings_for_sandbox
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.scaleout.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": _database_url(),
        "PI_SANDBOX_URL": pi_sandbox.url,
        "PI_SANDBOX_API_KEY": pi_sandbox.api_key,
        "PI_SIGNAL_LOG": str(tmp_path / "signals.log"),
        "PI_SCALEOUT_CACHE_PREFIX": f"pi-scaleout-{tmp_path.name}",
    }
    return Cluster(env=env, signal_log=tmp_path / "signals.log")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer at {url}")


@pytest.fixture
def app_servers(cluster: Cluster, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn instances (gthread) on different ports, sharing PostgreSQL and Redis."""
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(2):
            port = _free_port()
            log = (tmp_path / f"gunicorn-{index}.log").open("wb")
            process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "tests.scaleout.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--worker-class",
                    "gthread",
                    "--workers",
                    "2",
                    "--threads",
                    "8",
                    "--timeout",
                    "60",
                ],
                env=cluster.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(f"{url}/pi_payment/me", process)
            urls.append(url)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
