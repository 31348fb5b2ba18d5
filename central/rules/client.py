"""The typed client of the rules routes (``central.rules.api``)."""

from __future__ import annotations

from dataclasses import dataclass

from central.client import CentralHttp
from ussdloop.money import Money


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    code: str | None = None  # fraud_violation, unknown_receiver, transfer_limit_exceeded...
    message: str | None = None


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
        answer = await self._http.call("GET", "/transfer", params=params)
        if answer["allowed"]:
            return Eligibility(True)
        return Eligibility(False, answer["reason"]["code"], answer["reason"]["message"])

    async def scheme_fee(self, amount: Money, sender_dfsp: str, receiver_dfsp: str) -> Money:
        params = {"amount": str(amount), "sender_dfsp": sender_dfsp, "receiver_dfsp": receiver_dfsp}
        answer = await self._http.call("GET", "/fees", params=params)
        return Money.parse(answer["schemeFee"], amount.currency)
