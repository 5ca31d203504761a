"""``make demo`` (``scripts/demo.sh``): it starts the shop and the sandbox, and Ctrl-C stops both.

The script runs as a terminal runs it: in its own process group, Ctrl-C sent to the whole group.
It must stop both servers and then die of SIGINT itself, so that ``make`` reports an interrupt
rather than a failed command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .shop_process import EXAMPLE_DIR, free_port, shop_environment

SCRIPT = EXAMPLE_DIR.parent / "scripts" / "demo.sh"
READY = "Press Ctrl-C to stop both servers."


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_ctrl_c_stops_the_shop_and_the_sandbox_and_ends_as_an_interrupt(tmp_path: Path) -> None:
    shop_port, sandbox_port = free_port(), free_port()
    environment = shop_environment(
        {
            "VENV": str(Path(sys.executable).parents[1]),
            "SHOP_PORT": str(shop_port),
            "SANDBOX_PORT": str(sandbox_port),
            "SANDBOX_STATE": str(tmp_path / "sandbox-state.json"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        }
    )
    demo = subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if READY in line:
                break
        assert READY in "".join(output), "".join(output)
        assert listening(shop_port) and listening(sandbox_port)

        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    output.append(rest)

    assert demo.returncode == -signal.SIGINT, "".join(output)
    assert "Stopping the shop and the sandbox..." in rest
    assert not listening(shop_port) and not listening(sandbox_port)
    assert (tmp_path / "sandbox-state.json").exists()
