"""The DFSP API's routes for pending transactions and agent cash (``dfsp.invoices``,
``dfsp.cash``), and ``GET /metrics``; ``dfsp.api.dfsp_app`` adds them.

- A merchant's invoice and an agent's cash-out request are both pending transactions
  (``kind`` ``invoice`` / ``cash_out``) that the buyer (the customer) quotes, approves
  with their own PIN, or rejects; the lists are the pending ones, both sides.
- A cash-in is quoted and paid like a send, with the agent's PIN.

An invoice answers as ``{invoiceId, kind, state, amount, payeeName, buyerName,
createdAt}``: names only, never a phone number (the merchant never learns the buyer's
MSISDN). Quotes and payments answer in the shapes of ``/quotes/send`` and
``/transfers``. Refusals go through ``dfsp.api.DOMAIN_ERRORS``.

Invoices across DFSPs take the same routes: a merchant's invoice to a user number of
another DFSP (``dfsp.invoices_across``), and, at the buyer's DFSP, the invoices merchants
of other DFSPs sent (listed with the others; quoted, approved through clearing and
rejected by the id this DFSP gave them).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dfsp.api import (
    MetricsSource,
    _amount,
    _id,
    _pin,
    _quote_json,
    _shown_fee,
    _transfer_json,
    money_json,
)
from dfsp.cash import Cash
from dfsp.customers import Customers
from dfsp.domain.invoices import Invoice, RemoteInvoice
from dfsp.domain.payments import QuoteChanged, SendQuote
from dfsp.invoices import Invoices
from dfsp.invoices_across import InvoicesAcross
from ussdloop.http import read_json_object, string_field
from ussdloop.metrics import CONTENT_TYPE, render

MAX_USER_NUMBER_CHARS = 32


class InvoiceRoutes:
    def __init__(
        self,
        customers: Customers,
        invoices: Invoices,
        cash: Cash,
        metrics: MetricsSource,
        max_body: int,
    ) -> None:
        self._customers = customers
        self._invoices = invoices
        self._cash = cash
        self._metrics = metrics
        self._max_body = max_body

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/invoices", self.create_invoice)
        app.router.add_post("/cash-out-requests", self.request_cash_out)
        app.router.add_get("/customers/{customer_id}/invoices", self.pending)
        app.router.add_post("/invoices/{invoice_id}/quote", self.quote_invoice)
        app.router.add_post("/invoices/{invoice_id}/approve", self.approve)
        app.router.add_post("/invoices/{invoice_id}/reject", self.reject)
        app.router.add_post("/quotes/cash-in", self.quote_cash_in)
        app.router.add_post("/cash-ins", self.cash_in)
        app.router.add_get("/metrics", self.metrics)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        return await read_json_object(request, self._max_body)

    # --- asking: a merchant's invoice, an agent's cash-out request -----------------------

    async def create_invoice(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invoice = await self._invoices.create(
            _id(body, "merchantCustomerId"),
            _id(body, "merchantAccountId"),
            string_field(body, "buyerUserNumber", MAX_USER_NUMBER_CHARS),
            _amount(body),
        )
        return web.json_response(await self._invoice_json(invoice), status=201)

    async def request_cash_out(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invoice = await self._cash.request_cash_out(
            _id(body, "agentCustomerId"),
            _id(body, "agentAccountId"),
            string_field(body, "customerUserNumber", MAX_USER_NUMBER_CHARS),
            _amount(body),
        )
        return web.json_response(await self._invoice_json(invoice), status=201)

    # --- the lists ---------------------------------------------------------------------

    async def pending(self, request: web.Request) -> web.Response:
        customer = await self._customers.customer(request.match_info["customer_id"])
        own_name = _name(customer.first_name, customer.last_name)
        incoming = await self._invoices.incoming(customer.id)
        outgoing = await self._invoices.outgoing(customer.id)
        return web.json_response(
            {
                "incoming": [_invoice_json(p.invoice, p.other_name, own_name) for p in incoming],
                "outgoing": [_invoice_json(p.invoice, own_name, p.other_name) for p in outgoing],
            }
        )

    # --- answering: quote, approve with the buyer's PIN, reject ------------------------

    async def quote_invoice(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invoice_id = request.match_info["invoice_id"]
        customer_id, account_id = _id(body, "customerId"), _id(body, "accountId")
        if (across := await self._across(invoice_id)) is not None:
            quote = await across.quote(customer_id, invoice_id, account_id)
        else:
            quote = await self._invoices.quote_approval(customer_id, invoice_id, account_id)
        return web.json_response(_quote_json(quote))

    async def approve(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invoice_id = request.match_info["invoice_id"]
        customer_id, account_id = _id(body, "customerId"), _id(body, "accountId")
        pin, transfer_id = _pin(body), _id(body, "transferId")
        if (across := await self._across(invoice_id)) is not None:
            result = await across.approve(customer_id, invoice_id, account_id, pin, transfer_id)
        else:
            result = await self._invoices.approve(
                customer_id, invoice_id, account_id, pin, transfer_id
            )
        return web.json_response(_transfer_json(result))

    async def reject(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invoice_id, customer_id = request.match_info["invoice_id"], _id(body, "customerId")
        invoice: Invoice | RemoteInvoice
        if (across := await self._across(invoice_id)) is not None:
            invoice = await across.reject(customer_id, invoice_id)
        else:
            invoice = await self._invoices.reject(customer_id, invoice_id)
        return web.json_response(await self._invoice_json(invoice))

    # --- cash-in: quoted, then paid with the agent's PIN --------------------------------

    async def quote_cash_in(self, request: web.Request) -> web.Response:
        quote = await self._cash_in_quote(await self._body(request))
        return web.json_response(_quote_json(quote))

    async def cash_in(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        pin, transfer_id = _pin(body), _id(body, "transferId")
        quote = await self._cash_in_quote(body)
        if "fee" in body and _shown_fee(body) != quote.fee:
            raise QuoteChanged(f"the fee is now {quote.fee} {quote.currency}")
        result = await self._cash.cash_in(quote, pin, transfer_id)
        return web.json_response(_transfer_json(result))

    async def metrics(self, request: web.Request) -> web.Response:
        text = render(await self._metrics())
        return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})

    # --- helpers -----------------------------------------------------------------------

    async def _cash_in_quote(self, body: dict[str, Any]) -> SendQuote:
        return await self._cash.quote_cash_in(
            _id(body, "agentCustomerId"),
            _id(body, "agentAccountId"),
            string_field(body, "customerUserNumber", MAX_USER_NUMBER_CHARS),
            _amount(body),
        )

    async def _across(self, invoice_id: str) -> InvoicesAcross | None:
        """Where the invoice a merchant of another DFSP sent here is answered (None: an
        invoice of this DFSP)."""
        across = self._invoices.across
        if across is None or await across.find(invoice_id) is None:
            return None
        return across

    async def _invoice_json(self, invoice: Invoice | RemoteInvoice) -> dict[str, Any]:
        if isinstance(invoice, RemoteInvoice):
            buyer = await self._customers.customer(invoice.buyer_customer_id)
            return _invoice_json(
                invoice, invoice.merchant_name, _name(buyer.first_name, buyer.last_name)
            )
        payee = await self._customers.customer(invoice.payee_customer_id)
        if invoice.buyer_customer_id is None:  # a buyer at another DFSP
            buyer_name = str(invoice.buyer_name)
        else:
            buyer = await self._customers.customer(invoice.buyer_customer_id)
            buyer_name = _name(buyer.first_name, buyer.last_name)
        return _invoice_json(invoice, _name(payee.first_name, payee.last_name), buyer_name)


def _invoice_json(
    invoice: Invoice | RemoteInvoice, payee_name: str, buyer_name: str
) -> dict[str, Any]:
    """What either party may see of a pending transaction: names, never a phone number."""
    return {
        "invoiceId": invoice.id,
        "kind": str(invoice.kind),
        "state": str(invoice.state),
        "amount": money_json(invoice.amount),
        "payeeName": payee_name,
        "buyerName": buyer_name,
        "createdAt": invoice.created_at.isoformat(),
    }


def _name(first: str, last: str) -> str:
    return f"{first} {last}"
