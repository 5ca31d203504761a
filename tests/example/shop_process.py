"""The example shop (``example_project/``) as a subprocess, for its tests and the e2e test.

The suite runs under ``tests.settings``, so the shop cannot be imported in-process: it runs with
its own settings module (``config.settings``), its own SQLite file and the environment variables
of ``.env.example`` set explicitly (so that a developer's ``example_project/.env`` plays no part).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example_project"

# Every variable of .env.example: empty means "the default" (see config/settings.py).
SHOP_VARIABLES = (
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "PI_API_KEY",
    "PI_API_BASE_URL",
    "PI_NETWORK",
    "PI_HORIZON_URL",
    "PI_SANDBOX",
)


def shop_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for the shop: ours, minus the suite's Django and database
    variables, with every shop variable empty (its default) unless ``overrides`` sets it."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}
    }
    environment.update(dict.fromkeys(SHOP_VARIABLES, ""))
    environment.update(overrides or {})
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings"
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def run_in_shop(
    *args: str, overrides: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` in ``example_project/`` with :func:`shop_environment`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLE_DIR,
        env=shop_environment(overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(
    *args: str, overrides: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py args...``; raise with its output when it fails."""
    result = run_in_shop("manage.py", *args, overrides=overrides, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ShopProcess:
    """The shop, migrated and seeded in ``workdir/shop.sqlite3``, served by ``runserver``.

    ``with ShopProcess(workdir, sandbox_url) as shop:`` starts it (``shop.url``) and stops it.
    """

    def __init__(self, workdir: Path, sandbox_url: str, api_key: str = "sandbox-api-key") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "shop.log"
        self.overrides = {
            "DATABASE_URL": f"sqlite:///{workdir / 'shop.sqlite3'}",
            "PI_API_BASE_URL": sandbox_url,
            "PI_API_KEY": api_key,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a management command against this shop's database."""
        return manage(*args, overrides=self.overrides)

    def start(self, timeout: float = 30) -> Self:
        """Migrate, seed, start ``runserver`` and wait until it answers."""
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("seed_shop")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                cwd=EXAMPLE_DIR,
                env=shop_environment(self.overrides),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the shop did not start:\n{self.log()}")

    def log(self) -> str:
        """What ``runserver`` printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop ``runserver``."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
