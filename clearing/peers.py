"""Talking to the other DFSPs' interledger endpoints (found through the central
directory): who a receiver is, what the payee's DFSP charges, and a payment request.

A DFSP serves these under the base URL it registered with the directory (its
``spspReceiver`` for a user is ``<base>/receivers/<user number>``):

- ``GET <base>/receivers/{user number}`` -> ``{"userNumber", "name", "currency", "address"}``;
- ``POST <base>/quotes {"userNumber", "amount", "transferCode"}`` -> ``{"payeeFee"}``,
  the fee the payee's DFSP keeps back from what arrives;
- ``POST <base>/payment-requests {"transferId", "userNumber", "amount",
  "transferCode", "payerName", "payerDfsp", "invoiceId"?}`` -> ``{"packet" (hex),
  "condition" (base64url), "expiresAt"}``;
- ``POST <base>/payment-requests/batch {"transferCode", "payerName", "payerDfsp",
  "requests": [{"transferId", "userNumber", "amount"}, ...]}`` -> ``{"requests": [...]}``,
  each ``{"transferId", "name", "payeeFee", "packet", "condition", "expiresAt"}`` or
  ``{"transferId", "error": {"id", "message"}}``: receiver, quote and payment request
  of many payments from one payer at once (a bulk batch's rows);
- ``POST <base>/invoices {"invoiceId", "merchantDfsp", "merchantName",
  "merchantUserNumber", "buyerUserNumber", "amount", "memo"}`` -> 201 ``{"reference"}``:
  a merchant's invoice for a customer of that DFSP (idempotent on the merchant's DFSP
  and invoice id), who is told and may pay it through clearing;
- ``POST <base>/invoices/{invoice id}/rejection {"buyerDfsp"}`` -> ``{"state"}``: the
  buyer refused a merchant's invoice (the merchant's DFSP tells the merchant).

Amounts are ``{"amount": "12.50", "currency": "USD"}``. Refusals come back as the
DFSP API's errors ``{"id", "message"}`` and are raised as ``PeerRefused``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from clearing.ilp.conditions import base64url_decode
from ussdloop.money import Money

MAX_ANSWER_BYTES: Final = 64 * 1024
MAX_BATCH_ANSWER_BYTES: Final = 1024 * 1024  # 100 payment requests with room to spare
RECEIVERS: Final = "/receivers/"


class PeerRefused(Exception):
    def __init__(self, message: str, *, id: str, status: int) -> None:
        super().__init__(message)
        self.id = id
        self.status = status


@dataclass(frozen=True)
class Receiver:
    user_number: str
    name: str
    currency: str
    address: str


@dataclass(frozen=True)
class BatchRequest:
    """One answer of ``PeerClient.payment_requests``."""

    name: str
    payee_fee: Money
    issued: IssuedRequest


@dataclass(frozen=True)
class IssuedRequest:
    packet: bytes
    condition: bytes
    expires_at: datetime


def endpoint_of(spsp_receiver: str) -> str:
    """The DFSP's interledger base URL from a directory entry's receiver URL."""
    base, found, _ = spsp_receiver.rpartition(RECEIVERS)
    if not found or not base:
        raise ValueError(f"not a receiver URL: {spsp_receiver!r}")
    return base


def money_json(value: Money) -> dict[str, str]:
    return {"amount": str(value), "currency": value.currency}


class PeerClient:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def receiver(self, endpoint: str, user_number: str) -> Receiver:
        body = await self._call("GET", f"{endpoint}{RECEIVERS}{quote(user_number, safe='')}")
        return Receiver(body["userNumber"], body["name"], body["currency"], body["address"])

    async def payee_fee(
        self, endpoint: str, user_number: str, amount: Money, transfer_code: str
    ) -> Money:
        request = {"userNumber": user_number, "amount": money_json(amount)}
        body = await self._call(
            "POST", f"{endpoint}/quotes", request | {"transferCode": transfer_code}
        )
        fee = body["payeeFee"]
        return Money.parse(fee["amount"], fee["currency"])

    async def payment_request(
        self,
        endpoint: str,
        *,
        transfer_id: str,
        user_number: str,
        amount: Money,
        transfer_code: str,
        payer_name: str,
        payer_dfsp: str,
        invoice_id: str | None = None,
    ) -> IssuedRequest:
        request: dict[str, Any] = {
            "transferId": transfer_id,
            "userNumber": user_number,
            "amount": money_json(amount),
            "transferCode": transfer_code,
            "payerName": payer_name,
            "payerDfsp": payer_dfsp,
        }
        if invoice_id is not None:
            request["invoiceId"] = invoice_id
        body = await self._call("POST", f"{endpoint}/payment-requests", request)
        return IssuedRequest(
            bytes.fromhex(body["packet"]),
            base64url_decode(body["condition"]),
            datetime.fromisoformat(body["expiresAt"]),
        )

    async def payment_requests(
        self,
        endpoint: str,
        orders: Sequence[tuple[str, str, Money]],
        *,
        transfer_code: str,
        payer_name: str,
        payer_dfsp: str,
    ) -> list[BatchRequest | PeerRefused]:
        """``receiver``, ``payee_fee`` and ``payment_request`` of many payments
        (transfer id, user number, amount) in one call; a refused one in its place."""
        request = {
            "transferCode": transfer_code,
            "payerName": payer_name,
            "payerDfsp": payer_dfsp,
            "requests": [
                {"transferId": tid, "userNumber": number, "amount": money_json(amount)}
                for tid, number, amount in orders
            ],
        }
        url = f"{endpoint}/payment-requests/batch"
        body = await self._call("POST", url, request, max_bytes=MAX_BATCH_ANSWER_BYTES)
        answers = body.get("requests")
        if not isinstance(answers, list) or len(answers) != len(orders):
            raise PeerRefused("the answer does not match the requests", id="BadAnswer", status=502)
        return [_batch_request(answer) for answer in answers]

    async def send_invoice(
        self,
        endpoint: str,
        *,
        invoice_id: str,
        merchant_dfsp: str,
        merchant_name: str,
        merchant_user_number: str,
        buyer_user_number: str,
        amount: Money,
        memo: str,
    ) -> str:
        """Tell the buyer's DFSP of a merchant's invoice; its reference there."""
        request = {
            "invoiceId": invoice_id,
            "merchantDfsp": merchant_dfsp,
            "merchantName": merchant_name,
            "merchantUserNumber": merchant_user_number,
            "buyerUserNumber": buyer_user_number,
            "amount": money_json(amount),
            "memo": memo,
        }
        body = await self._call("POST", f"{endpoint}/invoices", request)
        return str(body["reference"])

    async def reject_invoice(self, endpoint: str, invoice_id: str, buyer_dfsp: str) -> str:
        """Tell the merchant's DFSP its invoice was refused; the invoice's state there."""
        url = f"{endpoint}/invoices/{quote(invoice_id, safe='')}/rejection"
        body = await self._call("POST", url, {"buyerDfsp": buyer_dfsp})
        return str(body["state"])

    async def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> Any:
        async with self._session.request(method, url, json=body) as response:
            raw = await response.content.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise PeerRefused("the answer is too large", id="AnswerTooLarge", status=502)
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if response.status >= 400:
                if isinstance(answer, dict) and isinstance(answer.get("id"), str):
                    message = str(answer.get("message") or answer["id"])
                    raise PeerRefused(message, id=answer["id"], status=response.status)
                raise PeerRefused(f"HTTP {response.status}", id="HttpError", status=response.status)
            if not isinstance(answer, dict):
                raise PeerRefused("the answer is not a JSON object", id="BadAnswer", status=502)
            return answer


def _batch_request(answer: Any) -> BatchRequest | PeerRefused:
    try:
        error = answer.get("error")
        if error is not None:
            message = str(error.get("message") or error["id"])
            status = 404 if error["id"] == "UnknownReceiver" else 422
            return PeerRefused(message, id=str(error["id"]), status=status)
        fee = answer["payeeFee"]
        issued = IssuedRequest(
            bytes.fromhex(answer["packet"]),
            base64url_decode(answer["condition"]),
            datetime.fromisoformat(answer["expiresAt"]),
        )
        return BatchRequest(
            str(answer["name"]), Money.parse(fee["amount"], fee["currency"]), issued
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:  # MoneyError too
        raise PeerRefused(f"a malformed answer: {error!r}", id="BadAnswer", status=502) from None
