"""The processes a benchmark runs against: the sandbox and gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from django_pi_payments.sandbox import wire

from .client import JSONClient

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: ours, the repo on ``PYTHONPATH``, and ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class _ChildProcess:
    """A process a benchmark runs against: stopped by :meth:`close` or on leaving ``with``."""

    _process: subprocess.Popen[Any]

    def close(self) -> None:
        """Stop the process."""
        raise NotImplementedError

    def _wait_or_kill(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the process to end, then kill it."""
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Sandbox(_ChildProcess):
    """:mod:`benchmarks.sandbox_process` running in a child process, and its control API."""

    def __init__(self, latency_ms: int) -> None:
        self.latency_ms = latency_ms
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sandbox_process", "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            cwd=ROOT,
            text=True,
        )
        self.url: str = self._read()["url"]
        self.control = JSONClient(self.url, exact=True)

    def _read(self) -> Any:
        stdout: IO[str] | None = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process exited")
        return wire.loads(line)

    def seed(self, count: int) -> list[dict[str, Any]]:
        """``count`` payments awaiting completion (see :mod:`benchmarks.sandbox_process`)."""
        stdin: IO[str] | None = self._process.stdin
        assert stdin is not None
        stdin.write(wire.dumps({"seed": count}) + "\n")
        stdin.flush()
        payments: list[dict[str, Any]] = self._read()["payments"]
        return payments

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One control API call; raises on an error status."""
        reply = self.control.request(method, path, body)
        if reply.status >= 400:
            raise RuntimeError(f"sandbox {method} {path}: {reply.status} {reply.data}")
        return reply.data

    def reset(self) -> None:
        """Forget users, payments, the ledger and the call log (the config stays)."""
        self.call("POST", "/sandbox/reset", {"config": False})

    def pioneer(self, username: str) -> tuple[str, str]:
        """A new Pioneer and an access token: ``(uid, token)``."""
        uid = self.call("POST", "/sandbox/users", {"username": username})["uid"]
        token = self.call("POST", "/sandbox/tokens", {"uid": uid, "ttl_seconds": 86400})
        return uid, token["access_token"]

    def requests_served(self) -> int:
        """Pi and Horizon calls served since the last reset (control calls excluded)."""
        return int(self.call("GET", "/sandbox/stats")["requests"])

    def close(self) -> None:
        """Stop the process."""
        self.control.close()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._wait_or_kill(10)


class Gunicorn(_ChildProcess):
    """gunicorn serving :mod:`benchmarks.project` with :mod:`benchmarks.project.gunicorn_conf`."""

    def __init__(self, env: Mapping[str, str], *, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "benchmarks.project.wsgi:application",
            "--config",
            "python:benchmarks.project.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self._process = subprocess.Popen(command, env=child_env(**env), cwd=ROOT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("gunicorn exited at start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                time.sleep(0.2)
                continue
            probe = JSONClient(self.url)
            try:
                if probe.get("/pi_payment/me").status == 401:
                    return
            finally:
                probe.close()
        raise RuntimeError("gunicorn did not start in time")

    def close(self) -> None:
        """Stop gunicorn gracefully."""
        self._process.terminate()
        self._wait_or_kill(30)
