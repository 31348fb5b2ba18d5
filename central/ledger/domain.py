"""The central ledger's rules, without I/O: transfer states and their one allowed table of
transitions, the checked prepare request, balanced entries, the net debit cap.

Accounts are the participants' settlement positions (named as the DFSP) and the
central fee account ``central-fees``. A transfer debits its payer the amount plus the
scheme fee and credits the payee the amount and ``central-fees`` the fee: its entries
(debits negative, credits positive) sum to zero, always (``assert_balanced``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from central.errors import UnprocessableEntityError
from ussdloop.money import Money

FEE_ACCOUNT: Final = "central-fees"
MAX_REASON_CHARS: Final = 500
UUID_TEXT: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class TransferState(StrEnum):
    PREPARED = "prepared"
    EXECUTED = "executed"
    REJECTED = "rejected"
    EXPIRED = "expired"


# The only transitions there are; each happens once (a final state stays final).
TRANSITIONS: Final[dict[TransferState, frozenset[TransferState]]] = {
    TransferState.PREPARED: frozenset(
        {TransferState.EXECUTED, TransferState.REJECTED, TransferState.EXPIRED}
    ),
    TransferState.EXECUTED: frozenset(),
    TransferState.REJECTED: frozenset(),
    TransferState.EXPIRED: frozenset(),
}


def may_become(current: TransferState, wanted: TransferState) -> bool:
    return wanted in TRANSITIONS[current]


class InvalidUriParameterError(UnprocessableEntityError):
    """A path parameter that is not what the route names (the reference's id)."""

    status = 400


class UnsupportedCryptoTypeError(UnprocessableEntityError):
    """A condition of a type other than PREIMAGE-SHA-256."""


class NetDebitCapExceededError(UnprocessableEntityError):
    """A prepare that would take the payer's net position beyond its net debit cap."""

    def __init__(self, room: Money, needed: Money) -> None:
        super().__init__(
            f"the net debit cap leaves room for {room} {room.currency}; the transfer needs {needed}"
        )
        self.room = room


def checked_transfer_id(text: str) -> str:
    """A transfer id is a UUID in its canonical lower-case form."""
    try:
        parsed = str(uuid.UUID(text))
    except ValueError:
        raise InvalidUriParameterError("id must be a valid GUID") from None
    if parsed != text.lower():
        raise InvalidUriParameterError("id must be a valid GUID")
    return parsed


@dataclass(frozen=True)
class Prepare:
    """A checked prepare request: what the payer asks the centre to hold."""

    id: str
    payer: str
    payee: str
    amount_minor: int  # to the payee
    fee_minor: int  # to the central fee account (0: no fee line)
    condition: bytes  # the 32-byte SHA-256 fingerprint
    expires_at: datetime
    memo: dict[str, Any]
    debit_memo: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.amount_minor <= 0 or self.fee_minor < 0:
            raise UnprocessableEntityError("amounts are positive")
        if self.payer == self.payee:
            raise UnprocessableEntityError("the payer and the payee are different DFSPs")
        if FEE_ACCOUNT in (self.payer, self.payee):
            raise UnprocessableEntityError(f"{FEE_ACCOUNT!r} is credited only with the fee")
        if len(self.condition) != 32:
            raise UnprocessableEntityError("a condition fingerprint is 32 bytes")
        assert_balanced(self.entries())

    @property
    def debit_minor(self) -> int:
        return self.amount_minor + self.fee_minor

    def entries(self) -> list[tuple[str, int]]:
        """(account, signed minor amount): the debit first, then the credits."""
        entries = [(self.payer, -self.debit_minor), (self.payee, self.amount_minor)]
        if self.fee_minor:
            entries.append((FEE_ACCOUNT, self.fee_minor))
        return entries

    def accounts(self) -> list[str]:
        return sorted({account for account, _ in self.entries()})


def assert_balanced(entries: list[tuple[str, int]]) -> None:
    total = sum(amount for _, amount in entries)
    if total != 0:
        raise AssertionError(f"unbalanced transfer entries {entries}: sum {total}")


def check_not_expired(expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise UnprocessableEntityError(
            f"expires_at {expires_at.isoformat()} is already past (central time {now.isoformat()})"
        )


def check_net_debit_cap(
    position_minor: int, debit_minor: int, cap_minor: int | None, currency: str
) -> None:
    """``position_minor``: the payer's executed and prepared payments less its executed
    receipts, unsettled; the prepare may take it up to the cap, not beyond."""
    if cap_minor is None:
        return
    if position_minor + debit_minor > cap_minor:
        room = max(0, cap_minor - position_minor)
        raise NetDebitCapExceededError(Money(currency, room), Money(currency, debit_minor))


def reason_text(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise UnprocessableEntityError("say why the transfer is rejected")
    return reason[:MAX_REASON_CHARS]
