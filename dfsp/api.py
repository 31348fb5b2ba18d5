"""The DFSP's HTTP API: customers, send-money quotes and transfers, balance and
ministatement (DESIGN "HTTP APIs"); the gateway calls it through ``dfsp.client``.

Handlers parse and check the JSON body, call ``Customers`` / ``Payments`` and answer
JSON. Amounts travel as ``{"amount": "12.50", "currency": "USD"}`` (decimal strings).
A PIN only ever travels in a request body, is wrapped in ``Pin`` (whose repr hides the
digits) before it reaches the services, and no error message or log line carries it.

The domain errors are answered from one table, ``DOMAIN_ERRORS``: status, and the
fields a caller acts on (``attemptsLeft``, ``available``, ``limit``...). The document
served at ``/openapi.json`` is ``dfsp.openapi.OPENAPI``, written as data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from dfsp.customers import Customers
from dfsp.domain.customers import (
    AlreadyRegistered,
    Customer,
    CustomerRole,
    PersonAlreadyRegistered,
    UnknownCustomer,
    UserNumberTaken,
)
from dfsp.domain.fees import FeeError
from dfsp.domain.identifiers import IdentifierError, UserNumbersExhausted
from dfsp.domain.limits import LimitViolation
from dfsp.domain.payments import (
    InvalidAmount,
    LimitExceeded,
    QuoteChanged,
    SendNotAllowed,
    SendQuote,
    StatementNotAllowed,
    UnknownReceiver,
    parse_amount,
)
from dfsp.domain.pins import MAX_PIN_LENGTH, Pin, PinLocked, WeakPin, WrongPin
from dfsp.domain.transfers import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidRequest,
    TransferConflict,
)
from dfsp.openapi import OPENAPI
from dfsp.payments import MAX_STATEMENT_ROWS, Payments
from ussdloop.http import BadRequest, error_middleware, read_json_object, string_field
from ussdloop.money import Money

MAX_BODY = 16384
MAX_ID_CHARS = 64
MAX_NAME_CHARS = 100
MAX_AMOUNT_CHARS = 32

ErrorFields = Callable[[Any], dict[str, Any]]


def _no_fields(error: Any) -> dict[str, Any]:
    return {}


def _limit_fields(error: LimitExceeded) -> dict[str, Any]:
    violation: LimitViolation = error.violation
    remaining = violation.remaining
    return {
        "limit": str(violation.limit),
        "remaining": money_json(remaining) if isinstance(remaining, Money) else remaining,
    }


# The one place domain errors become HTTP answers: the most specific type listed wins;
# the answer's id is the raised class's name.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, ErrorFields]] = {
    WrongPin: (403, lambda e: {"attemptsLeft": e.attempts_left}),
    PinLocked: (423, _no_fields),
    WeakPin: (400, lambda e: {"reason": str(e.reason)}),
    UnknownCustomer: (404, _no_fields),
    UnknownReceiver: (404, _no_fields),
    AlreadyRegistered: (409, _no_fields),
    PersonAlreadyRegistered: (409, _no_fields),
    UserNumberTaken: (409, _no_fields),
    UserNumbersExhausted: (503, _no_fields),
    IdentifierError: (400, _no_fields),
    InsufficientFunds: (409, lambda e: {"available": money_json(e.available)}),
    LimitExceeded: (409, _limit_fields),
    QuoteChanged: (409, _no_fields),
    TransferConflict: (409, _no_fields),
    SendNotAllowed: (403, _no_fields),
    StatementNotAllowed: (403, _no_fields),
    InvalidAmount: (400, _no_fields),
    CurrencyMismatch: (400, _no_fields),
    FeeError: (400, _no_fields),
    InvalidRequest: (400, _no_fields),
}
_MAPPED = tuple(DOMAIN_ERRORS)


def money_json(value: Money) -> dict[str, str]:
    return {"amount": str(value), "currency": value.currency}


@web.middleware
async def answer_domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _MAPPED as error:
        status, fields = next(
            DOMAIN_ERRORS[kind] for kind in type(error).__mro__ if kind in DOMAIN_ERRORS
        )
        name = type(error).__name__
        body = {"id": name, "message": str(error) or name, **fields(error)}
        return web.json_response(body, status=status)


# --- request fields ---------------------------------------------------------------------


def _amount(body: dict[str, Any], name: str = "amount") -> Money:
    value = body.get(name)
    if not isinstance(value, dict):
        raise BadRequest(f"{name!r} must be an object with 'amount' and 'currency'")
    text = string_field(value, "amount", MAX_AMOUNT_CHARS)
    return parse_amount(text, string_field(value, "currency", 3))


def _pin(body: dict[str, Any]) -> Pin:
    return Pin(string_field(body, "pin", MAX_PIN_LENGTH))


def _id(body: dict[str, Any], name: str) -> str:
    return string_field(body, name, MAX_ID_CHARS)


def _limit(body: dict[str, Any]) -> int:
    value = body.get("limit", 8)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("'limit' must be a whole number")
    if not 1 <= value <= MAX_STATEMENT_ROWS:
        raise BadRequest(f"'limit' must be 1 to {MAX_STATEMENT_ROWS}")
    return value


def _role(body: dict[str, Any]) -> CustomerRole:
    text = string_field(body, "role", 16, required=False) or CustomerRole.CUSTOMER.value
    try:
        return CustomerRole(text)
    except ValueError:
        roles = ", ".join(role.value for role in CustomerRole)
        raise BadRequest(f"'role' must be one of {roles}") from None


# --- routes -----------------------------------------------------------------------------


class _Routes:
    def __init__(self, customers: Customers, payments: Payments, max_body: int) -> None:
        self._customers = customers
        self._payments = payments
        self._max_body = max_body

    async def _body(self, request: web.Request) -> dict[str, Any]:
        return await read_json_object(request, self._max_body)

    async def register(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer = await self._customers.register(
            msisdn=string_field(body, "msisdn", 32),
            first_name=string_field(body, "firstName", MAX_NAME_CHARS),
            last_name=string_field(body, "lastName", MAX_NAME_CHARS),
            date_of_birth=string_field(body, "dateOfBirth", 10),
            national_id=string_field(body, "nationalId", MAX_NAME_CHARS),
            account_name=string_field(body, "accountName", MAX_NAME_CHARS),
            role=_role(body),
            pin=_pin(body),
            user_number=string_field(body, "userNumber", 32, required=False) or None,
            language=string_field(body, "language", 8, required=False) or "en",
        )
        return web.json_response(await self._customer_json(customer), status=201)

    async def by_msisdn(self, request: web.Request) -> web.Response:
        msisdn = request.match_info["msisdn"]
        customer = await self._customers.by_msisdn(msisdn)
        if customer is None:
            raise UnknownCustomer(msisdn)
        return web.json_response(await self._customer_json(customer))

    async def by_user_number(self, request: web.Request) -> web.Response:
        number = request.match_info["user_number"]
        customer = await self._customers.by_user_number(number)
        if customer is None:
            raise UnknownCustomer(number)
        return web.json_response(await self._customer_json(customer))

    async def quote_send(self, request: web.Request) -> web.Response:
        quote = await self._quote(await self._body(request))
        return web.json_response(_quote_json(quote))

    async def send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        pin, transfer_id = _pin(body), _id(body, "transferId")
        quote = await self._quote(body)
        if "fee" in body and _amount(body, "fee") != quote.fee:
            raise QuoteChanged(f"the fee is now {quote.fee} {quote.currency}")
        result = await self._payments.send(quote, pin, transfer_id)
        return web.json_response(
            {
                "transferId": result.transfer_id,
                "status": str(result.status),
                "receiverName": result.receiver_name,
                "amount": money_json(result.amount),
                "fee": money_json(result.fee),
            }
        )

    async def balance(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        account_id = request.match_info["account_id"]
        available = await self._payments.balance(_id(body, "customerId"), account_id, _pin(body))
        return web.json_response({"accountId": account_id, "available": money_json(available)})

    async def ministatement(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        account_id = request.match_info["account_id"]
        rows = await self._payments.ministatement(
            _id(body, "customerId"), account_id, _pin(body), _limit(body)
        )
        lines = [
            {"name": row.name, "amount": money_json(row.amount), "at": row.at.isoformat()}
            for row in rows
        ]
        return web.json_response({"accountId": account_id, "rows": lines})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def _quote(self, body: dict[str, Any]) -> SendQuote:
        return await self._payments.quote_send(
            _id(body, "senderCustomerId"),
            _id(body, "senderAccountId"),
            string_field(body, "receiverUserNumber", 32),
            _amount(body),
        )

    async def _customer_json(self, customer: Customer) -> dict[str, Any]:
        """What callers may see of a customer: never the PIN (hash) or the person key."""
        accounts = await self._customers.accounts_of(customer.id)
        primary = next((a for a in accounts if a.primary), None)
        return {
            "customerId": customer.id,
            "userNumber": str(customer.user_number),
            "msisdn": customer.msisdn,
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "role": str(customer.role),
            "language": customer.language,
            "pinLocked": customer.pin_locked,
            "primaryAccountId": None if primary is None else primary.id,
            "currency": None if primary is None else primary.currency,
        }


def _quote_json(quote: SendQuote) -> dict[str, Any]:
    return {
        "senderCustomerId": quote.sender_customer_id,
        "senderAccountId": quote.sender_account_id,
        "receiverUserNumber": quote.receiver_user_number,
        "receiverName": quote.receiver_name,
        "amount": money_json(quote.amount),
        "fee": money_json(quote.fee),
        "total": money_json(quote.total),
    }


def dfsp_app(
    customers: Customers, payments: Payments, *, max_body: int = MAX_BODY
) -> web.Application:
    routes = _Routes(customers, payments, max_body)
    app = web.Application(
        client_max_size=max_body, middlewares=[error_middleware(), answer_domain_errors]
    )
    app.router.add_post("/customers", routes.register)
    app.router.add_get("/customers/by-msisdn/{msisdn}", routes.by_msisdn)
    app.router.add_get("/customers/{user_number}", routes.by_user_number)
    app.router.add_post("/quotes/send", routes.quote_send)
    app.router.add_post("/transfers", routes.send)
    app.router.add_post("/accounts/{account_id}/balance", routes.balance)
    app.router.add_post("/accounts/{account_id}/ministatement", routes.ministatement)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/openapi.json", routes.openapi)
    return app
