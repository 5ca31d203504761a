"""The chain side of app-to-user payments: sign the Stellar payment, submit it, find it again.

Needs ``stellar-sdk`` (``pip install "django-pi-payments[a2u]"``), imported only when a wallet is
built, so the rest of the app runs without it. Horizon is read and written through the shared
:class:`~django_pi_payments.http.Transport` of :class:`~django_pi_payments.horizon.HorizonClient`:
a timeout on every call, and a submission (a POST) never repeated once it may have left.

Nothing here touches the database: :mod:`django_pi_payments.services.a2u` decides when to sign,
submit or look up, under its locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Self
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from .conf import SETTINGS_NAME, BuiltFromSettings, pi_settings
from .dto import STROOP, TXID_RE, parse_datetime
from .exceptions import HorizonError, PiUnavailable
from .horizon import HorizonClient

# Transactions of the wallet read per Horizon page, and the most pages read to prove that no
# transaction pays a payment (beyond that the look-up fails rather than allow a second payment).
SEARCH_PAGE_SIZE = 200
MAX_SEARCH_PAGES = 25


class WalletNotConfigured(ImproperlyConfigured):
    """``WALLET_PRIVATE_SEED`` is missing or invalid, or ``stellar-sdk`` is not installed.

    The message never contains the seed.
    """


class SubmissionFailed(HorizonError):
    """Horizon refused the transaction, so it does not pay anything.

    ``code`` is Horizon's transaction result code (``tx_bad_seq``, ``tx_failed``...) and
    ``operation_codes`` the operations' codes (``op_underfunded``...), when Horizon gave them.
    """

    def __init__(self, code: str, operation_codes: list[str] | None = None) -> None:
        self.code = code
        self.operation_codes = operation_codes or []
        detail = f" ({', '.join(self.operation_codes)})" if self.operation_codes else ""
        super().__init__(f"Horizon refused the transaction: {code}{detail}")


@dataclass(frozen=True)
class SignedPayment:
    """A signed transaction: its hash (the txid) and its base64 XDR envelope."""

    txid: str
    envelope_xdr: str


def _stellar_sdk() -> Any:
    try:
        import stellar_sdk
    except ImportError:
        raise WalletNotConfigured(
            'App-to-user payments need stellar-sdk: pip install "django-pi-payments[a2u]".'
        ) from None
    return stellar_sdk


def stellar_amount(amount: Decimal) -> str:
    """``amount`` as Stellar writes it: a plain decimal with at most 7 places."""
    return f"{amount.quantize(STROOP):f}"


class Wallet:
    """The app wallet: the key pair of ``WALLET_PRIVATE_SEED``. Neither ``repr``, nor any error,
    nor a traceback shows the seed: the methods that hold it hide every variable of their frames
    and of stellar-sdk's beneath them (``sensitive_variables``)."""

    @sensitive_variables()
    def __init__(self, seed: str) -> None:
        sdk = _stellar_sdk()
        try:
            keypair = sdk.Keypair.from_secret(seed)
        except (ValueError, TypeError):
            keypair = None  # stellar-sdk's message repeats the seed: it must not be kept
        if keypair is None:
            raise WalletNotConfigured(
                f'{SETTINGS_NAME}["WALLET_PRIVATE_SEED"] is not a valid Stellar secret seed.'
            )
        self._keypair = keypair

    @classmethod
    @sensitive_variables("seed")
    def from_settings(cls) -> Wallet:
        """The wallet of ``PI_PAYMENTS["WALLET_PRIVATE_SEED"]``."""
        seed = pi_settings.WALLET_PRIVATE_SEED
        if not seed:
            raise WalletNotConfigured(
                f'{SETTINGS_NAME}["WALLET_PRIVATE_SEED"] is not set: app-to-user payments are '
                "signed with the app wallet's seed (see docs/a2u.md)."
            )
        return cls(str(seed))

    @property
    def public_key(self) -> str:
        """The wallet's account id (``G…``)."""
        return str(self._keypair.public_key)

    def __repr__(self) -> str:
        return f"<Wallet {self.public_key}>"

    @sensitive_variables()
    def sign_payment(
        self,
        *,
        sequence: int,
        base_fee: int,
        network: str,
        destination: str,
        amount: Decimal,
        memo: str,
        max_time: int,
    ) -> SignedPayment:
        """Sign a transaction holding one native payment of ``amount`` to ``destination``.

        ``sequence`` is the wallet account's current sequence number (the transaction uses the
        next one), ``network`` the network passphrase, ``memo`` the text memo (the payment
        identifier) and ``max_time`` the POSIX time after which the transaction can never be
        applied. Raises :class:`SubmissionFailed` (``tx_malformed``) when stellar-sdk refuses
        the values.
        """
        sdk = _stellar_sdk()
        account = sdk.Account(self.public_key, sequence)
        try:
            envelope = (
                sdk.TransactionBuilder(account, network_passphrase=network, base_fee=base_fee)
                .append_payment_op(destination, sdk.Asset.native(), stellar_amount(amount))
                .add_text_memo(memo)
                .add_time_bounds(0, max_time)
                .build()
            )
        except ValueError as exc:  # a bad address, amount or memo: stellar-sdk's SdkErrors too
            raise SubmissionFailed("tx_malformed", [type(exc).__name__]) from exc
        envelope.sign(self._keypair)
        return SignedPayment(txid=envelope.hash_hex(), envelope_xdr=envelope.to_xdr())


def _records(page: dict[str, Any] | None) -> list[dict[str, Any]]:
    records = (page or {}).get("_embedded", {}).get("records", [])
    return [record for record in records if isinstance(record, dict)]


def _result_codes(data: Any) -> tuple[str, list[str]]:
    extras = data.get("extras") if isinstance(data, dict) else None
    codes = extras.get("result_codes") if isinstance(extras, dict) else None
    if not isinstance(codes, dict):
        return "tx_rejected", []
    operations = codes.get("operations")
    return (
        str(codes.get("transaction") or "tx_rejected"),
        [str(code) for code in operations] if isinstance(operations, list) else [],
    )


class WalletHorizon(HorizonClient):
    """The Horizon calls an app-to-user payment needs, on top of the read-only client."""

    @classmethod
    def from_settings(cls) -> Self:
        """A client for the configured network's Horizon server."""
        return cls(
            pi_settings.horizon_url,
            timeout=pi_settings.TIMEOUT,
            max_retries=pi_settings.MAX_RETRIES,
        )

    def sequence(self, account_id: str) -> int:
        """The account's current sequence number."""
        account = self._get(f"/accounts/{quote(account_id)}")
        if account is None:
            raise HorizonError(f"The account {account_id} does not exist on this network.")
        try:
            return int(account["sequence"])
        except (KeyError, TypeError, ValueError):
            raise HorizonError("Horizon answered an account without a sequence number.") from None

    def base_fee(self) -> int:
        """The base fee per operation of the latest ledger, in stroops (as stellar-sdk reads it)."""
        records = _records(self._get("/ledgers?order=desc&limit=1"))
        try:
            return int(records[0]["base_fee_in_stroops"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise HorizonError("Horizon answered no base fee.") from None

    def find_payment(self, account_id: str, memo: str, since: datetime) -> str | None:
        """The txid of a successful transaction from ``account_id`` with text memo ``memo``.

        Reads the account's transactions newest first, back to ``since``; ``None`` when there is
        none. Raises :class:`HorizonError` rather than answer ``None`` when the account made too
        many transactions since then to read them all.
        """
        path = f"/accounts/{quote(account_id)}/transactions?order=desc&limit={SEARCH_PAGE_SIZE}"
        cursor = ""
        for _page in range(MAX_SEARCH_PAGES):
            records = _records(self._get(path + cursor))
            for record in records:
                if (
                    record.get("memo_type") == "text"
                    and record.get("memo") == memo
                    and record.get("successful") is True
                    and record.get("source_account") == account_id
                ):
                    found = record.get("hash")
                    if isinstance(found, str) and TXID_RE.fullmatch(found):
                        return found
                    raise HorizonError(f"Horizon listed the transaction of {memo} without a hash.")
                created = parse_datetime(record.get("created_at"))
                if created is not None and created < since:
                    return None
            if len(records) < SEARCH_PAGE_SIZE:
                return None
            cursor = f"&cursor={quote(str(records[-1].get('paging_token', '')))}"
        raise HorizonError(f"Too many transactions of {account_id} to search for {memo}.")

    def submit(self, envelope_xdr: str) -> None:
        """``POST /transactions``: return once the transaction is on the ledger.

        Raises :class:`SubmissionFailed` when Horizon refused it (it pays nothing), and
        :class:`PiUnavailable` when the answer is unknown (a timeout, a 5xx): the transaction
        may still land.
        """
        response = self.transport.request("POST", "/transactions", data={"tx": envelope_xdr})
        if response.status == 200:
            return
        if response.status >= 500:
            raise PiUnavailable(f"Horizon answered {response.status}", status=response.status)
        if 400 <= response.status < 500:
            raise SubmissionFailed(*_result_codes(response.data))
        raise HorizonError(f"Horizon answered {response.status} to the submission")


_shared_wallet = BuiltFromSettings(Wallet.from_settings)
_shared_horizon = BuiltFromSettings(WalletHorizon.from_settings)


def get_wallet() -> Wallet:
    """The app wallet of ``PI_PAYMENTS``, rebuilt when the settings change."""
    return _shared_wallet.get()


def get_wallet_horizon() -> WalletHorizon:
    """The process-wide Horizon client of app-to-user payments."""
    return _shared_horizon.get()
