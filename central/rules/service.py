"""Central rules use cases: may this transfer go ahead, and the scheme fee of a transfer.

A transfer is refused, in this order, for an amount that is not a positive amount of
the scheme's currency (``invalid_amount``), above the scheme's largest transfer
(``transfer_limit_exceeded``), to a receiver the directory does not know or whose
primary DFSP is paused (``unknown_receiver``), or when the sender or the receiver is
blocked by the fraud component (``fraud_violation``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from central.directory.numbers import is_user_number
from central.directory.service import MAX_BATCH, Directory
from central.errors import ValidationError
from central.fraud.service import FraudStanding
from central.rules.fees import SchemeFee
from ussdloop.money import Money, MoneyError


class RefusalCode(StrEnum):
    INVALID_AMOUNT = "invalid_amount"
    TRANSFER_LIMIT_EXCEEDED = "transfer_limit_exceeded"
    UNKNOWN_RECEIVER = "unknown_receiver"
    FRAUD_VIOLATION = "fraud_violation"


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    message: str


def grouped(amount: Money) -> str:
    """``100,000`` or ``1,234.50``: how the limit is said in a refusal."""
    whole, fraction = divmod(amount.minor, 10**amount.scale)
    return f"{whole:,}" if not fraction else f"{whole:,}.{fraction:0{amount.scale}d}"


@dataclass(frozen=True)
class TransferCheck:
    """One of ``Rules.check_transfers``: why it is refused, or its scheme fee."""

    refusal: Refusal | None
    scheme_fee: Money | None  # None when refused


def _fraud_refusal(
    sender: str, receiver: str, standings: Mapping[str, FraudStanding]
) -> Refusal | None:
    for role, number in (("sender", sender), ("receiver", receiver)):
        if standings[number].blocked:
            return Refusal(RefusalCode.FRAUD_VIOLATION, f"the {role} {number} is blocked")
    return None


class Rules:
    def __init__(
        self,
        directory: Directory,
        scheme_fee: SchemeFee,
        max_transfer: Money | None,
    ) -> None:
        self._directory = directory
        self._scheme_fee = scheme_fee
        self._max_transfer = max_transfer
        self.currency = scheme_fee.currency

    async def check_transfer(self, sender: str, receiver: str, amount: str) -> Refusal | None:
        """None when allowed; otherwise the first reason it is not."""
        if not is_user_number(sender):
            raise ValidationError(f"{sender!r} is not a user number (8 digits, not 0 first)")
        refusal = self._amount_refusal(amount)
        if refusal is not None:
            return refusal
        found, standings = await self._directory.lookup_screened([receiver], [sender, receiver])
        if found[receiver] is None:
            return Refusal(RefusalCode.UNKNOWN_RECEIVER, f"the receiver {receiver} is unknown")
        return _fraud_refusal(sender, receiver, standings)

    async def check_transfers(
        self, sender: str, sender_dfsp: str, transfers: Sequence[tuple[str, str]]
    ) -> list[TransferCheck]:
        """``check_transfer`` and ``scheme_fee`` of many transfers (receiver, amount) from
        one sender, a bulk payment's rows: the directory and the fraud standings are read
        once for them all, in one transaction."""
        if not is_user_number(sender):
            raise ValidationError(f"{sender!r} is not a user number (8 digits, not 0 first)")
        if len(transfers) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} transfers at once")
        receivers = {receiver for receiver, _ in transfers}
        found, standings = await self._directory.lookup_screened(receivers, {sender, *receivers})
        checks = []
        for receiver, amount in transfers:
            refusal, resource = self._amount_refusal(amount), found[receiver]
            if refusal is None and resource is None:
                message = f"the receiver {receiver} is unknown"
                refusal = Refusal(RefusalCode.UNKNOWN_RECEIVER, message)
            if refusal is None:
                refusal = _fraud_refusal(sender, receiver, standings)
            if refusal is not None or resource is None:
                checks.append(TransferCheck(refusal, None))
                continue
            fee = self.scheme_fee(amount, sender_dfsp, resource.dfsp)
            checks.append(TransferCheck(None, fee))
        return checks

    def _amount_refusal(self, amount: str) -> Refusal | None:
        money = self._amount(amount)
        if money is None:
            return Refusal(RefusalCode.INVALID_AMOUNT, f"{amount!r} is not a positive amount")
        if self._max_transfer is not None and money > self._max_transfer:
            return Refusal(
                RefusalCode.TRANSFER_LIMIT_EXCEEDED,
                f"Not allowed to send more than {grouped(self._max_transfer)}",
            )
        return None

    def scheme_fee(self, amount: str, sender_dfsp: str, receiver_dfsp: str) -> Money:
        money = self._amount(amount)
        if money is None:
            raise ValidationError(f"'amount': {amount!r} is not a positive amount")
        return self._scheme_fee.fee_for(money, same_dfsp=sender_dfsp == receiver_dfsp)

    def _amount(self, text: str) -> Money | None:
        try:
            money = Money.parse(text, self.currency)
        except MoneyError:
            return None
        return money if money.is_positive else None
