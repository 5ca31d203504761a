"""``manage.py pi_send``: pay a Pioneer from the app wallet (an app-to-user payment)."""

from __future__ import annotations

import json
import math
from argparse import ArgumentParser
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ... import services
from ...exceptions import PaymentError
from ...models import EventSource, Payment
from ...services.a2u_resume import REFUND_KEY
from ...services.core import db_alias


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _not_json(text)
    return value


def _metadata(text: str) -> dict[str, Any]:
    try:
        # Python reads NaN, Infinity and 1e400 (as inf), which strict JSON (so Pi's API) cannot say.
        metadata = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        raise CommandError("--metadata is not valid JSON.") from None
    if not isinstance(metadata, dict):
        raise CommandError("--metadata must be a JSON object.")
    if REFUND_KEY in metadata:
        raise CommandError(
            f'--metadata must not hold "{REFUND_KEY}", which links a refund to the payment it '
            'refunds: refund a payment with the admin action "Refund to the payer" (or '
            "services.refund), which checks what is left to refund."
        )
    return metadata


class Command(BaseCommand):
    """Send an app-to-user payment and print its identifier, txid and status."""

    help = (
        "Pay AMOUNT Pi from the app wallet (PI_PAYMENTS['WALLET_PRIVATE_SEED']) to the Pioneer "
        "UID, and print the payment's identifier, transaction id and status. A payment created "
        "but not completed is finished by pi_reconcile, never paid twice."
    )

    def add_arguments(self, parser: CommandParser | ArgumentParser) -> None:
        """``--uid``, ``--amount``, ``--memo`` and the optional ``--metadata``."""
        parser.add_argument("--uid", required=True, help="The Pioneer's app-specific Pi uid.")
        parser.add_argument(
            "--amount", required=True, help="Pi to send: a positive number, at most 7 decimals."
        )
        parser.add_argument("--memo", required=True, help="The memo the Pioneer sees.")
        parser.add_argument(
            "--metadata",
            default="{}",
            metavar="JSON",
            help="A JSON object stored with the payment, e.g. '{\"reward\": 42}'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Send the payment; a refusal or an unfinished payment becomes a ``CommandError``."""
        metadata = _metadata(options["metadata"])
        try:
            payment = services.send_payment(
                options["uid"],
                options["amount"],
                options["memo"],
                metadata,
                source=EventSource.A2U,
            )
        except services.A2UError as error:
            if error.payment is None:
                raise CommandError(f"{error.detail} ({error.code})") from None
            # Read where it was written: a read replica may not have it yet.
            stored = Payment.objects.using(db_alias()).get(pk=error.payment.pk)
            self._print(stored)
            if stored.is_final:  # cancelled instead of paid (not_as_requested...)
                raise CommandError(f"{error.detail} ({error.code})") from None
            raise CommandError(
                f"{error.detail} ({error.code}); pi_reconcile will finish the payment."
            ) from None
        except PaymentError as error:
            raise CommandError(f"{error.detail} ({error.code})") from None
        except DatabaseError as error:
            raise CommandError(
                f"The database could not be used: {str(error).strip()}; a payment already "
                "created at Pi is finished by pi_reconcile."
            ) from None
        self._print(payment)

    def _print(self, payment: Payment) -> None:
        self.stdout.write(f"identifier: {payment.identifier}")
        self.stdout.write(f"txid: {payment.txid or '-'}")
        self.stdout.write(f"status: {payment.status}")
