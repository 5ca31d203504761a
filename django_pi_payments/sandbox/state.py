"""The sandbox's state: config, users, tokens, payments, ledger and accounts, behind one lock.

Every mutation happens while holding :attr:`SandboxState.lock` (a re-entrant lock) and ends with
:meth:`SandboxState.save`, which rewrites the optional JSON state file atomically (temporary file
plus ``os.replace``). Nothing sleeps while holding the lock.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import wire
from .errors import AUTH_MESSAGE, SandboxError
from .faults import FaultRegistry
from .ids import is_account_id, new_access_token, new_account_id, new_uid
from .models import (
    MAX_DURATION_SECONDS,
    U2A,
    Account,
    LedgerTx,
    Payment,
    SandboxConfig,
    Token,
    User,
    from_record,
    to_record,
)
from .traffic import Traffic

__all__ = ["DEFAULT_SCOPES", "SandboxState", "StateFileError"]

DEFAULT_SCOPES = ("username", "payments", "wallet_address")
APP_WALLET_BALANCE = Decimal(100000)
USER_WALLET_BALANCE = Decimal(1000)
BASE_FEE_STROOPS = 100000
FILE_VERSION = 1


class StateFileError(ValueError):
    """The state file cannot be read (not a state file of this version) or written."""


def _invalid(message: str) -> SandboxError:
    return SandboxError("invalid_arguments", message)


def _check_address(value: object) -> str:
    if not is_account_id(value):
        raise SandboxError("invalid_address", f"{value!r} is not a valid Stellar account id.")
    return str(value)


def _scheme_credential(header: str | None, scheme: str) -> str | None:
    if header is None:
        return None
    word, _, credential = header.strip().partition(" ")
    return credential.strip() if word == scheme and credential.strip() else None


class SandboxState:
    """All data of one simulated app, its users and its ledger.

    ``config`` holds the initial :class:`SandboxConfig` values (they also win over a state file's
    saved config); ``clock`` returns POSIX seconds and can be replaced in tests. Raises
    :class:`StateFileError` when ``state_file`` cannot be loaded or written.
    """

    def __init__(
        self,
        *,
        api_key: str = "sandbox-api-key",
        state_file: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        config: Mapping[str, object] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.api_key = api_key
        self.state_file = Path(state_file) if state_file is not None else None
        self.initial_config = SandboxConfig().updated(config or {})
        self.config = self.initial_config
        self.faults = FaultRegistry(self.lock)
        self.traffic = Traffic(self.lock)
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.payments: dict[str, Payment] = {}
        self.transactions: dict[str, LedgerTx] = {}
        self.accounts: dict[str, Account] = {}
        self.awaiting_approval: set[str] = set()
        self.ledger_sequence = 1
        if self.state_file is not None and self.state_file.exists():
            self._load(self.state_file, config or {})
            self.initial_config = self.config
        self.ensure_account(self.config.app_wallet_address, APP_WALLET_BALANCE)
        try:
            self.save()
        except OSError as exc:
            raise StateFileError(f"{self.state_file}: {exc.strerror or exc}") from exc

    def now(self) -> float:
        """Current time from the injectable clock."""
        return self.clock()

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self, *, restore_config: bool = False) -> None:
        """Forget users, tokens, payments, ledger, accounts, faults and traffic.

        The config is kept unless ``restore_config``, which restores the initial one.
        """
        with self.lock:
            if restore_config:
                self.config = self.initial_config
            self.users.clear()
            self.tokens.clear()
            self.payments.clear()
            self.transactions.clear()
            self.accounts.clear()
            self.awaiting_approval.clear()
            self.ledger_sequence = 1
            self.faults.clear()
            self.traffic.reset()
            self.ensure_account(self.config.app_wallet_address, APP_WALLET_BALANCE)
            self.save()

    def update_config(self, changes: Mapping[str, object]) -> SandboxConfig:
        """Apply config ``changes`` (validated); a new app wallet gets a funded account."""
        with self.lock:
            self.config = self.config.updated(changes)
            self.ensure_account(self.config.app_wallet_address, APP_WALLET_BALANCE)
            self.save()
            return self.config

    # -- authentication ------------------------------------------------------------------------

    def check_api_key(self, header: str | None) -> None:
        """Accept exactly ``Key <api key>``; raise ``invalid_api_key`` otherwise."""
        key = _scheme_credential(header, "Key")
        if key is None or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise SandboxError("invalid_api_key", AUTH_MESSAGE)

    def authenticate_bearer(self, header: str | None) -> tuple[User, Token]:
        """Resolve ``Bearer <token>`` to its user; raise the 401 codes of ``/v2/me``."""
        credential = _scheme_credential(header, "Bearer")
        with self.lock:
            token = self.tokens.get(credential) if credential else None
            if token is None or token.revoked or token.uid not in self.users:
                raise SandboxError("invalid_access_token", AUTH_MESSAGE)
            if token.valid_until <= self.now():
                raise SandboxError("expired_access_token", "The access token has expired.")
            return self.users[token.uid], token

    # -- users and tokens ----------------------------------------------------------------------

    def get_user(self, uid: object) -> User:
        """Return the user ``uid``; raise ``user_not_found``."""
        with self.lock:
            user = self.users.get(uid) if isinstance(uid, str) else None
            if user is None:
                raise SandboxError(
                    "user_not_found",
                    f"User with uid {uid} was not found. Please check the uid again.",
                )
            return user

    def upsert_user(self, data: Mapping[str, Any]) -> User:
        """Create a user, or update the given fields of an existing ``uid``.

        An absent ``wallet_address`` is generated; ``null`` means the user has no wallet.
        """
        uid = data.get("uid", new_uid())
        if not (isinstance(uid, str) and uid):
            raise _invalid('"uid" must be a non-empty string.')
        username = data.get("username", f"pioneer_{secrets.token_hex(3)}")
        if not isinstance(username, str):
            raise _invalid('"username" must be a string.')
        scopes = data.get("scopes", list(DEFAULT_SCOPES))
        if not (isinstance(scopes, list) and all(isinstance(scope, str) for scope in scopes)):
            raise _invalid('"scopes" must be a list of strings.')
        wallet = data.get("wallet_address", "")
        wallet = new_account_id() if wallet == "" else wallet
        if wallet is not None:
            _check_address(wallet)
        with self.lock:
            user = self.users.get(uid)
            if user is None:
                user = User(uid, username, list(scopes), wallet)
                self.users[uid] = user
            else:
                user.username = data.get("username", user.username)
                user.scopes = list(data.get("scopes", user.scopes))
                user.wallet_address = wallet if "wallet_address" in data else user.wallet_address
            if user.wallet_address is not None:
                self.ensure_account(user.wallet_address, USER_WALLET_BALANCE)
            self.save()
            return user

    def create_token(self, uid: object, ttl_seconds: object = 3600) -> Token:
        """Issue an access token for ``uid`` valid for ``ttl_seconds`` (negative: expired)."""
        if (
            isinstance(ttl_seconds, bool)
            or not isinstance(ttl_seconds, int | float | Decimal)
            or not -MAX_DURATION_SECONDS <= ttl_seconds <= MAX_DURATION_SECONDS
        ):
            raise _invalid(
                f'"ttl_seconds" must be a number from -{MAX_DURATION_SECONDS} '
                f"to {MAX_DURATION_SECONDS}."
            )
        with self.lock:
            user = self.get_user(uid)
            token = Token(new_access_token(), user.uid, self.now() + float(ttl_seconds))
            self.tokens[token.token] = token
            self.save()
            return token

    def change_token(self, access_token: object, *, revoke: bool) -> Token:
        """Expire (``valid_until`` := now) or revoke a token; raise ``token_not_found``."""
        with self.lock:
            token = self.tokens.get(access_token) if isinstance(access_token, str) else None
            if token is None:
                raise SandboxError("token_not_found", "No such access token.")
            if revoke:
                token.revoked = True
            else:
                token.valid_until = min(token.valid_until, self.now())
            self.save()
            return token

    # -- accounts and ledger -------------------------------------------------------------------

    def ensure_account(self, account_id: str, balance: Decimal) -> Account:
        """Return the account ``account_id``, creating it with ``balance`` if missing."""
        with self.lock:
            account = self.accounts.get(account_id)
            if account is None:
                account = Account(
                    account_id, balance, self.ledger_sequence << 32, self.ledger_sequence
                )
                self.accounts[account_id] = account
            return account

    def put_account(self, data: Mapping[str, Any]) -> Account:
        """Register or update a Horizon account (``account_id``, ``balance``?, ``sequence``?)."""
        account_id = _check_address(data.get("account_id"))
        balance = data.get("balance")
        sequence = data.get("sequence")
        if balance is not None and (
            isinstance(balance, bool)
            or not isinstance(balance, int | Decimal)
            or not 0 <= balance <= wire.MAX_AMOUNT
        ):
            raise _invalid(f'"balance" must be a number from 0 to {wire.MAX_AMOUNT}.')
        if sequence is not None and (
            isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0
        ):
            raise _invalid('"sequence" must be a non-negative integer.')
        with self.lock:
            account = self.ensure_account(account_id, USER_WALLET_BALANCE)
            if balance is not None:
                account.balance = Decimal(balance)
            if sequence is not None:
                account.sequence = sequence
            self.save()
            return account

    def record_transaction(
        self,
        *,
        txid: str,
        source: str,
        destination: str,
        amount: Decimal,
        memo: str | None,
        successful: bool = True,
        fee_stroops: int = BASE_FEE_STROOPS,
        source_sequence: int | None = None,
        envelope_xdr: str | None = None,
    ) -> LedgerTx:
        """Close a ledger holding this payment; move the funds when it succeeded."""
        with self.lock:
            self.ledger_sequence += 1
            tx = LedgerTx(
                hash=txid,
                source_account=source,
                destination=destination,
                amount=amount,
                memo=memo,
                successful=successful,
                ledger=self.ledger_sequence,
                created_at=self.now(),
                fee_charged=fee_stroops,
                source_sequence=source_sequence,
                envelope_xdr=envelope_xdr,
            )
            self.transactions[txid] = tx
            fee = Decimal(fee_stroops).scaleb(-wire.MAX_DECIMALS)
            if source in self.accounts:
                sender = self.accounts[source]
                sender.balance -= fee + (amount if successful else 0)
                sender.last_modified_ledger = self.ledger_sequence
                if source_sequence is not None:
                    sender.sequence = source_sequence
            if successful and destination in self.accounts:
                self.accounts[destination].balance += amount
                self.accounts[destination].last_modified_ledger = self.ledger_sequence
            self.save()
            return tx

    # -- persistence ---------------------------------------------------------------------------

    def save(self) -> None:
        """Write the state file atomically (no-op without ``state_file``)."""
        if self.state_file is None:
            return
        with self.lock:
            document = {
                "version": FILE_VERSION,
                "config": self.config.to_dict(),
                "ledger_sequence": self.ledger_sequence,
                "users": [to_record(item) for item in self.users.values()],
                "tokens": [to_record(item) for item in self.tokens.values()],
                "payments": [to_record(item) for item in self.payments.values()],
                "transactions": [to_record(item) for item in self.transactions.values()],
                "accounts": [to_record(item) for item in self.accounts.values()],
            }
            directory = self.state_file.parent
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=directory, prefix=self.state_file.name, suffix=".tmp", delete=False
            ) as handle:
                handle.write(wire.dumps(document))
            os.replace(handle.name, self.state_file)

    def _load(self, path: Path, overrides: Mapping[str, object]) -> None:
        try:
            self._read(path, overrides)
        except StateFileError:
            raise
        except OSError as exc:
            raise StateFileError(f"{path}: {exc.strerror or exc}") from exc
        except (ValueError, KeyError, TypeError, AttributeError, SandboxError) as exc:
            raise StateFileError(f"{path}: not a sandbox state file ({exc!r})") from exc

    def _read(self, path: Path, overrides: Mapping[str, object]) -> None:
        document = wire.loads(path.read_bytes())
        if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
            raise StateFileError(f"{path}: unsupported sandbox state file version")
        self.config = SandboxConfig().updated(document["config"]).updated(overrides)
        self.ledger_sequence = int(document["ledger_sequence"])
        self.users = {u.uid: u for u in (from_record(User, r) for r in document["users"])}
        self.tokens = {t.token: t for t in (from_record(Token, r) for r in document["tokens"])}
        self.payments = {
            p.identifier: p for p in (from_record(Payment, r) for r in document["payments"])
        }
        self.transactions = {
            t.hash: t for t in (from_record(LedgerTx, r) for r in document["transactions"])
        }
        self.accounts = {
            a.account_id: a for a in (from_record(Account, r) for r in document["accounts"])
        }
        self.awaiting_approval = {
            p.identifier
            for p in self.payments.values()
            if p.direction == U2A and p.is_open and not p.developer_approved
        }
