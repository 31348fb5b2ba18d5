"""The typed client of the central ledger (what a DFSP's clearing uses).

``LedgerClient(http)`` with the caller's ``CentralHttp``; refusals are
``central.client.CentralError`` with the API's id (``NetDebitCapExceededError``,
``UnprocessableEntityError``...). Amounts are ``Money`` in the ledger's currency (read
once from ``GET /``); conditions and fulfilments are raw 32 bytes (ILPv4), written on
the wire in the crypto-conditions forms.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from central.client import CentralError, CentralHttp
from clearing.ilp.conditions import (
    ILP_FULFILLMENT_LENGTH,
    PreimageCondition,
    PreimageFulfillment,
)
from ussdloop.money import Money

FEE_ACCOUNT = "central-fees"
MAX_MESSAGE_BYTES = 1 << 20


@dataclass(frozen=True)
class TransferRequest:
    id: str
    payer: str
    payee: str
    amount: Money  # to the payee
    scheme_fee: Money  # to the central fee account (zero: none)
    condition: bytes  # 32 bytes: SHA-256 of the fulfilment
    expires_at: datetime
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CentralTransfer:
    id: str
    state: str  # prepared, executed, rejected, expired
    payer: str
    payee: str
    amount: Money
    scheme_fee: Money
    condition: bytes
    expires_at: datetime
    fulfilment: bytes | None
    reason: str | None
    memo: dict[str, Any] = field(default_factory=dict)  # e.g. the ILP packet of the payment


@dataclass(frozen=True)
class Position:
    account: str
    payments: Money
    receipts: Money
    net: Money  # receipts - payments


@dataclass(frozen=True)
class SettlementLine:
    account: str
    net: Money


@dataclass(frozen=True)
class Settlement:
    id: str
    transfers: int
    positions: list[SettlementLine]


@dataclass(frozen=True)
class Notification:
    seq: int
    transfer: CentralTransfer


class LedgerClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http
        self._currency: str | None = None

    async def prepare(self, transfer: TransferRequest) -> CentralTransfer:
        body = _prepare_body(transfer)
        return await self._transfer("PUT", f"/transfers/{transfer.id}", body)

    async def prepare_many(
        self, transfers: Sequence[TransferRequest]
    ) -> list[CentralTransfer | CentralError]:
        """``prepare`` of many transfers in one call (``POST /transfers/batch``); a
        refused one's ``CentralError`` in its place."""
        body = {"transfers": [_prepare_body(transfer) for transfer in transfers]}
        return await self._batch("/transfers/batch", body, len(transfers))

    async def fulfil(self, transfer_id: str, fulfilment: bytes) -> CentralTransfer:
        return await self._transfer(
            "PUT", f"/transfers/{transfer_id}/fulfillment", text=_fulfilment_text(fulfilment)
        )

    async def fulfil_many(
        self, fulfilments: Sequence[tuple[str, bytes]]
    ) -> list[CentralTransfer | CentralError]:
        """``fulfil`` of many transfers (``(id, fulfilment)``) in one call (``POST
        /transfers/fulfillments``); a refused one's ``CentralError`` in its place."""
        items = [
            {"id": transfer_id, "fulfillment": _fulfilment_text(fulfilment)}
            for transfer_id, fulfilment in fulfilments
        ]
        return await self._batch("/transfers/fulfillments", {"fulfillments": items}, len(items))

    async def reject(self, transfer_id: str, reason: str) -> CentralTransfer:
        return await self._transfer("PUT", f"/transfers/{transfer_id}/rejection", text=reason)

    async def get(self, transfer_id: str) -> CentralTransfer:
        return await self._transfer("GET", f"/transfers/{transfer_id}")

    async def fulfilment(self, transfer_id: str) -> bytes | None:
        """The preimage of an executed transfer; None while it is not executed."""
        transfer = await self.get(transfer_id)
        return transfer.fulfilment

    async def positions(self) -> list[Position]:
        answer = await self._http.call("GET", "/positions")
        currency = await self.currency()
        return [_position(item, currency) for item in answer["positions"]]

    async def position(self, dfsp: str) -> Position:
        answer = await self._http.call("GET", f"/positions/{dfsp}")
        return _position(answer, await self.currency())

    async def settle(self) -> Settlement:
        return _settlement(await self._http.call("POST", "/settlements"), await self.currency())

    async def settlement(self, settlement_id: str) -> Settlement:
        answer = await self._http.call("GET", f"/settlements/{settlement_id}")
        return _settlement(answer, await self.currency())

    async def notifications_after(self, seq: int, limit: int = 100) -> list[Notification]:
        params = {"after": str(seq), "limit": str(limit)}
        answer = await self._http.call("GET", "/notifications", params=params)
        currency = await self.currency()
        return [_notification(item, currency) for item in answer["notifications"]]

    async def subscribe(self, after: int | None = None) -> AsyncIterator[Notification]:
        """The notifications as they happen, each at most once, until the connection
        ends (then reconnect, and pull the missed ones with ``notifications_after``);
        ``after``: start after that number (the caller's cursor), not after the latest."""
        currency = await self.currency()
        url = self._http.base_url + "/notifications/ws"
        params = {} if after is None else {"after": str(after)}
        async with self._http.session.ws_connect(
            url,
            headers=self._http.headers,
            params=params,
            max_msg_size=MAX_MESSAGE_BYTES,
            heartbeat=30.0,
        ) as socket:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                yield _notification(json.loads(message.data), currency)

    async def currency(self) -> str:
        if self._currency is None:
            metadata = await self._http.call("GET", "/")
            self._currency = str(metadata["currency"])
        return self._currency

    async def _batch(
        self, path: str, body: dict[str, Any], count: int
    ) -> list[CentralTransfer | CentralError]:
        answer = await self._http.call("POST", path, body)
        currency = await self.currency()
        items = answer.get("transfers") if isinstance(answer, dict) else None
        if not isinstance(items, list) or len(items) != count:
            raise CentralError("the ledger answered no batch", id="BadAnswer", status=502)
        return [_transfer_or_refusal(item, currency) for item in items]

    async def _transfer(
        self, method: str, path: str, body: Any = None, *, text: str | None = None
    ) -> CentralTransfer:
        answer = await self._http.call(method, path, body, text=text)
        if not isinstance(answer, dict):
            raise CentralError("the ledger answered no transfer", id="BadAnswer", status=502)
        return parse_transfer(answer, await self.currency())


def parse_transfer(body: dict[str, Any], currency: str) -> CentralTransfer:
    credits = {leg["account"]: Money.parse(leg["amount"], currency) for leg in body["credits"]}
    fee = credits.pop(FEE_ACCOUNT, Money.zero(currency))
    ((payee, amount),) = credits.items()
    fulfilment = body.get("fulfillment")
    return CentralTransfer(
        id=body["id"],
        state=body["state"],
        payer=body["debits"][0]["account"],
        payee=payee,
        amount=amount,
        scheme_fee=fee,
        condition=PreimageCondition.from_uri(body["execution_condition"]).fingerprint,
        expires_at=datetime.fromisoformat(body["expires_at"]),
        fulfilment=None
        if fulfilment is None
        else PreimageFulfillment.from_base64url(fulfilment).preimage,
        reason=body.get("reason"),
        memo=dict(body.get("memo") or {}),
    )


def _position(body: dict[str, Any], currency: str) -> Position:
    return Position(
        body["account"],
        Money.parse(body["payments"], currency),
        Money.parse(body["receipts"], currency),
        Money.parse(body["net"], currency),
    )


def _settlement(body: dict[str, Any], currency: str) -> Settlement:
    lines = [
        SettlementLine(line["account"], Money.parse(line["net"], currency))
        for line in body["positions"]
    ]
    return Settlement(body["id"], int(body["transfers"]), lines)


def _notification(body: dict[str, Any], currency: str) -> Notification:
    return Notification(int(body["id"]), parse_transfer(body["resource"], currency))


def _fulfilment_text(fulfilment: bytes) -> str:
    return PreimageFulfillment(fulfilment).to_base64url()


def _prepare_body(transfer: TransferRequest) -> dict[str, Any]:
    credits = [{"account": transfer.payee, "amount": str(transfer.amount)}]
    if transfer.scheme_fee.minor:
        credits.append({"account": FEE_ACCOUNT, "amount": str(transfer.scheme_fee)})
    return {
        "id": transfer.id,
        "debits": [
            {"account": transfer.payer, "amount": str(transfer.amount + transfer.scheme_fee)}
        ],
        "credits": credits,
        "execution_condition": PreimageCondition(
            transfer.condition, ILP_FULFILLMENT_LENGTH
        ).to_uri(),
        "expires_at": transfer.expires_at.isoformat(),
        "memo": transfer.memo,
    }


def _transfer_or_refusal(item: Any, currency: str) -> CentralTransfer | CentralError:
    if not isinstance(item, dict):
        raise CentralError("the ledger answered no transfer", id="BadAnswer", status=502)
    error = item.get("error")
    if error is None:
        return parse_transfer(item, currency)
    status = error.get("status") if isinstance(error, dict) else None
    if not isinstance(status, int):
        raise CentralError("the ledger answered a malformed refusal", id="BadAnswer", status=502)
    return CentralError(str(error.get("message", "")), id=str(error.get("id")), status=status)
