"""Reads a transaction and its operations from Horizon to prove a payment was really made.

Pi verifies transactions itself; this is the defence in depth of PI_PLATFORM_API.md §4.3: the
transaction succeeded, its text memo is the payment identifier, and it holds a native payment of
exactly the payment's amount from ``from_address`` to ``to_address``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any

from .conf import BuiltFromSettings, pi_settings
from .dto import STROOP, PaymentDTO
from .exceptions import HorizonError, PiUnavailable, VerificationFailed
from .http import POOL_SIZE, Transport


class HorizonClient:
    """A minimal, read-only Horizon client over the shared :class:`Transport`."""

    def __init__(self, base_url: str, *, timeout: float = 10, max_retries: int = 2) -> None:
        # Each verification reads the transaction and its operations at once: two connections
        # for each thread that verifies. A hosted Horizon's URL may carry its token in its path:
        # log lines name the host and the call's path only.
        self.transport = Transport(
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            pool_size=2 * POOL_SIZE,
            log_base_path=False,
        )

    @classmethod
    def from_settings(cls) -> HorizonClient:
        """A client for the configured network's Horizon server."""
        return cls(
            pi_settings.horizon_url,
            timeout=pi_settings.TIMEOUT,
            max_retries=pi_settings.MAX_RETRIES,
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.transport.close()

    def _get(self, path: str) -> dict[str, Any] | None:
        response = self.transport.request("GET", path)
        if response.status == 404:
            return None
        if response.status >= 500 or response.status == 429:
            # A server error or Horizon's rate limit: try again later.
            raise PiUnavailable(f"Horizon answered {response.status}", status=response.status)
        if response.status >= 300 or not isinstance(response.data, dict):
            raise HorizonError(f"Horizon answered {response.status} to GET {path}")
        return response.data

    def answers(self) -> bool:
        """Whether Horizon answers its root resource right now."""
        try:
            self._get("/")
        except PiUnavailable:
            return False
        except HorizonError:
            return True  # an answer, if not the expected one
        return True

    def transaction(self, txid: str) -> dict[str, Any] | None:
        """The transaction resource, or ``None`` when Horizon does not know it.

        Raises :class:`HorizonError` for an answer that is not that transaction (a proxy's or a
        maintenance page's JSON): it says nothing about the payment.
        """
        data = self._get(f"/transactions/{txid}")
        if data is not None and str(data.get("hash")).lower() != txid.lower():
            raise HorizonError(f"Horizon answered something else than transaction {txid}")
        return data

    def operations(self, txid: str) -> list[dict[str, Any]] | None:
        """The transaction's operations, or ``None`` when Horizon does not know the transaction.

        Raises :class:`HorizonError` for an answer that is not a page of records: like a
        transaction that is not the one asked for, it says nothing about the payment. (The
        records' ``transaction_hash`` is not compared with ``txid``: for a fee-bump transaction
        asked for by its inner hash, it is the outer one.)
        """
        data = self._get(f"/transactions/{txid}/operations?limit=200")
        if data is None:
            return None
        embedded = data.get("_embedded")
        records = embedded.get("records") if isinstance(embedded, dict) else None
        if not isinstance(records, list):
            raise HorizonError(f"Horizon answered something else than the operations of {txid}")
        return [record for record in records if isinstance(record, dict)]

    def transaction_and_operations(
        self, txid: str
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
        """:meth:`transaction` and :meth:`operations`, read at the same time.

        The two reads are independent, so a verification waits one Horizon round trip, not two.
        """
        operations = _readers().submit(self.operations, txid)
        try:
            transaction = self.transaction(txid)
        except BaseException:
            operations.cancel()
            raise
        return transaction, operations.result()


# Threads that read operations while the calling thread reads the transaction.
_reader_pool: ThreadPoolExecutor | None = None
_reader_pool_lock = threading.Lock()


def _readers() -> ThreadPoolExecutor:
    """The process's reader threads, started on first use (so never before a fork)."""
    global _reader_pool
    with _reader_pool_lock:
        if _reader_pool is None:
            _reader_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="pi_horizon")
        return _reader_pool


def _same_amount(text: Any, expected: Decimal) -> bool:
    """Whether Horizon's amount ``text`` is ``expected`` to the stroop, the chain's precision
    (and the database's): Pi's answer, a double, may carry more places, e.g. ``0.30000000000000004``
    for a payment of ``0.3000000``."""
    try:
        return Decimal(str(text)) == expected.quantize(STROOP)
    except InvalidOperation:
        return False


def verify_payment_transaction(
    dto: PaymentDTO, txid: str, client: HorizonClient | None = None
) -> None:
    """Raise :class:`VerificationFailed` unless ``txid`` on Horizon pays exactly ``dto``.

    Raises :class:`PiUnavailable` when Horizon cannot be read, or does not know the transaction
    (which Pi has verified: Horizon lags behind), so the payment stays recoverable.
    """
    horizon = client or get_horizon_client()
    tx, operations = horizon.transaction_and_operations(txid)
    if tx is None or operations is None:
        # Pi has verified it: Horizon (or the node that answered one of the two reads) lags.
        raise PiUnavailable(f"Horizon does not know transaction {txid} yet", status=404)
    if tx.get("successful") is not True:
        raise VerificationFailed("The transaction did not succeed.", code="tx_not_successful")
    if tx.get("memo_type") != "text" or tx.get("memo") != dto.identifier:
        raise VerificationFailed(
            "The transaction's memo is not the payment identifier.", code="tx_memo_mismatch"
        )
    for operation in operations:
        if (
            operation.get("type") == "payment"
            and operation.get("asset_type") == "native"
            and operation.get("to") == dto.to_address
            and (operation.get("from") or tx.get("source_account")) == dto.from_address
            and _same_amount(operation.get("amount"), dto.amount)
        ):
            return
    raise VerificationFailed(
        "The transaction does not pay the payment's amount to the app's wallet.",
        code="tx_payment_mismatch",
    )


_shared_client = BuiltFromSettings(HorizonClient.from_settings)


def get_horizon_client() -> HorizonClient:
    """The process-wide Horizon client, rebuilt when ``PI_PAYMENTS`` changes."""
    return _shared_client.get()
