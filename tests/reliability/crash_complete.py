"""Send the ``complete`` callback in a process that dies right after Pi accepted the completion.

Run by ``test_crash.py``: ``python tests/reliability/crash_complete.py IDENTIFIER TXID`` with
``DJANGO_SETTINGS_MODULE=tests.settings``, ``DATABASE_URL`` naming the test's database and
``PI_SANDBOX_URL`` / ``PI_SANDBOX_API_KEY`` the test's sandbox.

``PiClient.complete_payment`` is wrapped: as soon as Pi's answer is in, the process prints
``pi-completed <flag>`` and leaves with ``os._exit(1)``, inside the service's transaction: nothing
is committed, no ``finally`` block runs, no signal is sent, as when a worker is killed.
"""

from __future__ import annotations

import os
import sys

from tests.child_process import setup_child


def main() -> int:
    """Complete the payment through the callback and die between Pi and the database."""
    identifier, txid = sys.argv[1:3]
    setup_child()
    from django.test import Client

    from django_pi_payments.client import PiClient
    from django_pi_payments.dto import PaymentDTO

    accept = PiClient.complete_payment

    def complete_then_die(client: PiClient, identifier: str, txid: str) -> PaymentDTO:
        answer = accept(client, identifier, txid)
        print("pi-completed", answer.status.developer_completed, flush=True)
        os._exit(1)

    PiClient.complete_payment = complete_then_die  # type: ignore[method-assign]
    body = {"paymentId": identifier, "transactionId": txid}
    response = Client().post("/pi_payment/complete", body, content_type="application/json")
    print("survived with", response.status_code, flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
