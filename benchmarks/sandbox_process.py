"""The sandbox in a process of its own, with a seeding command for the reconcile benchmark.

``python -m benchmarks.sandbox_process --latency-ms 20`` serves on a free loopback port and prints
``{"url": ...}`` as its first line on stdout. It then reads commands from stdin, one JSON object
a line, and answers each with one JSON line:

* ``{"seed": N}``: N new Pioneers, each with one approved user-to-app payment whose transaction is
  on the ledger and verified by Pi, i.e. N payments awaiting completion. Answers
  ``{"payments": [PaymentDTO, ...]}``.

Seeding applies the sandbox's own payment rules in-process (no HTTP, no latency): the state is
what the control API would build, thousands of times faster. The server stops at end of input.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import Any

from django_pi_payments.sandbox import SandboxServer, SandboxState, wire
from django_pi_payments.sandbox import payments as rules


def seed(state: SandboxState, count: int, base_url: str) -> list[dict[str, Any]]:
    """Create ``count`` paid, approved payments (one Pioneer each) and return their DTOs."""
    dtos = []
    for number in range(count):
        user = state.upsert_user({"username": f"stuck_{number}"})
        body = {"uid": user.uid, "amount": Decimal("1.5"), "memo": "stuck", "metadata": {}}
        payment = rules.create_u2a(state, body)
        rules.approve(state, payment.identifier)
        _tx, payment = rules.submit_user_transaction(state, payment.identifier, {})
        dtos.append(payment.to_dto(base_url))
    return dtos


def main() -> int:
    """Serve until stdin closes, answering seeding commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=20)
    options = parser.parse_args()
    server = SandboxServer(port=0, latency_ms=options.latency_ms)
    # No approval timeout: a seeded payment must not be cancelled while it waits its turn.
    server.state.update_config({"approval_timeout_seconds": 0})
    with server:
        print(wire.dumps({"url": server.url}), flush=True)
        for line in sys.stdin:
            command = wire.loads(line)
            answer = {"payments": seed(server.state, int(command["seed"]), server.url)}
            print(wire.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
