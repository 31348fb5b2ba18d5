"""The typed client of the rules routes (``central.rules.api``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.client import CentralHttp
from ussdloop.money import Money


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    code: str | None = None  # fraud_violation, unknown_receiver, transfer_limit_exceeded...
    message: str | None = None


@dataclass(frozen=True)
class TransferCheck:
    """One transfer of ``RulesClient.check_transfers``: allowed, with its scheme fee."""

    eligibility: Eligibility
    scheme_fee: Money | None  # None when refused


class RulesClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http

    async def check_transfer(
        self, sender_user_number: str, receiver_user_number: str, amount: Money
    ) -> Eligibility:
        params = {
            "sender_user_number": sender_user_number,
            "receiver_user_number": receiver_user_number,
            "amount": str(amount),
        }
        return _eligibility(await self._http.call("GET", "/transfer", params=params))

    async def check_transfers(
        self, sender_user_number: str, transfers: Sequence[tuple[str, Money]]
    ) -> list[TransferCheck]:
        """``check_transfer`` and ``scheme_fee`` of many (receiver, amount) at once, the
        scheme fee from this DFSP to each receiver's."""
        body = {
            "sender_user_number": sender_user_number,
            "transfers": [
                {"receiver_user_number": receiver, "amount": str(amount)}
                for receiver, amount in transfers
            ],
        }
        answer = await self._http.call("POST", "/transfers/check", body)
        return [
            TransferCheck(
                _eligibility(check),
                Money.parse(check["schemeFee"], amount.currency) if check["allowed"] else None,
            )
            for check, (_, amount) in zip(answer["transfers"], transfers, strict=True)
        ]

    async def scheme_fee(self, amount: Money, sender_dfsp: str, receiver_dfsp: str) -> Money:
        params = {"amount": str(amount), "sender_dfsp": sender_dfsp, "receiver_dfsp": receiver_dfsp}
        answer = await self._http.call("GET", "/fees", params=params)
        return Money.parse(answer["schemeFee"], amount.currency)


def _eligibility(answer: dict[str, Any]) -> Eligibility:
    if answer["allowed"]:
        return Eligibility(True)
    return Eligibility(False, answer["reason"]["code"], answer["reason"]["message"])
