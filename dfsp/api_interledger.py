"""The DFSP API's interledger routes: what other DFSPs ask of this one when their
customers pay a customer here (``clearing.peers`` is their client; the central
directory points them at ``<this API>/interledger``).

- ``GET /interledger/receivers/{user_number}`` -> ``{"userNumber", "name", "currency",
  "address"}`` (404 ``UnknownReceiver``);
- ``POST /interledger/quotes {"userNumber", "amount", "transferCode"}`` ->
  ``{"payeeFee"}``: the receiver fee this DFSP keeps back from what arrives;
- ``POST /interledger/payment-requests {"transferId", "userNumber", "amount",
  "transferCode", "payerName", "payerDfsp", "invoiceId"?}`` -> ``{"packet" (hex),
  "condition" (base64url), "expiresAt"}``; one with an ``invoiceId`` only for an
  invoice here to a customer of ``payerDfsp``, still pending, of that amount;
- ``POST /interledger/payment-requests/batch {"transferCode", "payerName",
  "payerDfsp", "requests": [{"transferId", "userNumber", "amount"}, ...]}`` (at most
  100; a bulk batch's rows, the reference's multi-receiver set-up) -> ``{"requests":
  [...]}``, each ``{"transferId", "name", "payeeFee", "packet", "condition",
  "expiresAt"}`` or ``{"transferId", "error": {"id": "UnknownReceiver", "message"}}``;
- ``POST /interledger/invoices {"invoiceId", "merchantDfsp", "merchantName",
  "merchantUserNumber", "buyerUserNumber", "amount", "memo"}`` -> 201 ``{"reference"}``:
  a merchant's invoice for a customer here (404 ``UnknownBuyer``), kept once per
  merchant DFSP and invoice id, the buyer told;
- ``POST /interledger/invoices/{invoice_id}/rejection {"buyerDfsp"}`` -> ``{"state"}``:
  the buyer refused an invoice of a merchant here, who is told.

No money moves here: a payment request only says what this DFSP will accept, and the
centre's prepared transfer carrying it is checked again before anything is credited.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from clearing.ilp.conditions import base64url_encode
from clearing.payment_requests import TRANSFER_CODES
from dfsp.api import _amount, _id, money_json
from dfsp.domain.payments import PaymentOrder, UnknownReceiver
from dfsp.interledger import Interledger, IssuedPayment
from dfsp.invoices_across import MAX_MEMO_CHARS, InvoicesAcross
from ussdloop.http import BadRequest, read_json_object, string_field

MAX_USER_NUMBER_CHARS: Final = 32
MAX_NAME_CHARS: Final = 100
MAX_DFSP_CHARS: Final = 32
MAX_INVOICE_ID_CHARS: Final = 64
MAX_PAYMENT_REQUESTS: Final = 100  # in one batch


class InterledgerRoutes:
    def __init__(
        self, interledger: Interledger, max_body: int, invoices: InvoicesAcross | None = None
    ) -> None:
        self._interledger = interledger
        self._max_body = max_body
        self._invoices = invoices

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/interledger/receivers/{user_number}", self.receiver)
        app.router.add_post("/interledger/quotes", self.quote)
        app.router.add_post("/interledger/payment-requests", self.payment_request)
        app.router.add_post("/interledger/payment-requests/batch", self.payment_requests)
        if self._invoices is not None:
            app.router.add_post("/interledger/invoices", self.invoice)
            app.router.add_post(
                "/interledger/invoices/{invoice_id}/rejection", self.invoice_rejection
            )

    async def receiver(self, request: web.Request) -> web.Response:
        user_number = request.match_info["user_number"][:MAX_USER_NUMBER_CHARS]
        return web.json_response(await self._interledger.receiver(user_number))

    async def quote(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, self._max_body)
        await self._interledger.receiver(string_field(body, "userNumber", MAX_USER_NUMBER_CHARS))
        fee = self._interledger.payee_fee(_amount(body), _code(body))
        return web.json_response({"payeeFee": money_json(fee)})

    async def payment_request(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, self._max_body)
        user_number = string_field(body, "userNumber", MAX_USER_NUMBER_CHARS)
        amount, payer_dfsp = _amount(body), string_field(body, "payerDfsp", 20)
        invoice_id = string_field(body, "invoiceId", MAX_INVOICE_ID_CHARS, required=False)
        if invoice_id:
            if self._invoices is None:
                raise BadRequest("this DFSP takes no payments of invoices")
            await self._invoices.sent.payable(invoice_id, user_number, amount, payer_dfsp)
        issued = await self._interledger.issue(
            transfer_id=_id(body, "transferId"),
            user_number=user_number,
            amount=amount,
            transfer_code=_code(body),
            payer_name=string_field(body, "payerName", MAX_NAME_CHARS),
            payer_dfsp=payer_dfsp,
            invoice_id=invoice_id or None,
        )
        answer: dict[str, Any] = {
            "packet": issued.packet.hex(),
            "condition": base64url_encode(issued.condition),
            "expiresAt": issued.details.expires_at.isoformat(),
        }
        return web.json_response(answer, status=201)

    async def payment_requests(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, self._max_body)
        asked = body.get("requests")
        if not isinstance(asked, list) or not all(isinstance(item, dict) for item in asked):
            raise BadRequest("'requests' is a list of objects")
        if not 0 < len(asked) <= MAX_PAYMENT_REQUESTS:
            raise BadRequest(f"'requests' holds 1 to {MAX_PAYMENT_REQUESTS} payment requests")
        orders = [
            PaymentOrder(
                _id(item, "transferId"),
                string_field(item, "userNumber", MAX_USER_NUMBER_CHARS),
                _amount(item),
            )
            for item in asked
        ]
        issued = await self._interledger.issue_many(
            orders,
            transfer_code=_code(body),
            payer_name=string_field(body, "payerName", MAX_NAME_CHARS),
            payer_dfsp=string_field(body, "payerDfsp", MAX_DFSP_CHARS),
        )
        answers = [
            _issued_json(order.transfer_id, one) for order, one in zip(orders, issued, strict=True)
        ]
        return web.json_response({"requests": answers}, status=201)

    async def invoice(self, request: web.Request) -> web.Response:
        assert self._invoices is not None
        body = await read_json_object(request, self._max_body)
        invoice = await self._invoices.receive(
            merchant_dfsp=string_field(body, "merchantDfsp", MAX_DFSP_CHARS),
            merchant_invoice_id=string_field(body, "invoiceId", MAX_INVOICE_ID_CHARS),
            merchant_name=string_field(body, "merchantName", MAX_NAME_CHARS),
            merchant_user_number=string_field(body, "merchantUserNumber", MAX_USER_NUMBER_CHARS),
            buyer_user_number=string_field(body, "buyerUserNumber", MAX_USER_NUMBER_CHARS),
            amount=_amount(body),
            memo=string_field(body, "memo", MAX_MEMO_CHARS, required=False) or "",
        )
        return web.json_response({"reference": invoice.id}, status=201)

    async def invoice_rejection(self, request: web.Request) -> web.Response:
        assert self._invoices is not None
        body = await read_json_object(request, self._max_body)
        invoice = await self._invoices.sent.rejected_by_buyer(
            request.match_info["invoice_id"][:MAX_INVOICE_ID_CHARS],
            string_field(body, "buyerDfsp", MAX_DFSP_CHARS),
        )
        return web.json_response({"state": str(invoice.state)})


def _issued_json(transfer_id: str, issued: IssuedPayment | UnknownReceiver) -> dict[str, Any]:
    if isinstance(issued, UnknownReceiver):
        error = {"id": "UnknownReceiver", "message": str(issued)}
        return {"transferId": transfer_id, "error": error}
    return {
        "transferId": transfer_id,
        "name": issued.name,
        "payeeFee": money_json(issued.payee_fee),
        "packet": issued.request.packet.hex(),
        "condition": base64url_encode(issued.request.condition),
        "expiresAt": issued.request.details.expires_at.isoformat(),
    }


def _code(body: dict[str, Any]) -> str:
    code = string_field(body, "transferCode", 16)
    if code not in TRANSFER_CODES:
        raise BadRequest(f"'transferCode' must be one of {', '.join(sorted(TRANSFER_CODES))}")
    return code
