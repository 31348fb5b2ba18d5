"""The DFSP's HTTP API: customers, send-money quotes and transfers, balance and
ministatement, account management (accounts, holders, signatories), PIN change and
language (DESIGN "HTTP APIs"); the gateway calls it through ``dfsp.client``. The routes
of pending transactions (invoices, agent cash-out requests), agent cash-in and
``GET /metrics`` are in ``dfsp.api_invoices``, on this module's helpers and error table.

Handlers parse and check the JSON body, call ``Customers`` / ``Payments`` and answer
JSON. Amounts travel as ``{"amount": "12.50", "currency": "USD"}`` (decimal strings).
A PIN only ever travels in a request body, is wrapped in ``Pin`` (whose repr hides the
digits) before it reaches the services, and no error message or log line carries it.
Every account-changing route takes the acting customer's ``pin`` and checks it
(``Customers.check_pin``) after parsing the body and before applying anything, so a
wrong PIN counts toward the lock-out and changes nothing. The account list needs no PIN
(the home and switch-account screens show it) and carries no balances.

The domain errors are answered from one table, ``DOMAIN_ERRORS``: status, and the
fields a caller acts on (``attemptsLeft``, ``available``, ``limit``, ``reason``...);
every ``AccountRuleViolation`` is answered with its class name as the id. The document
served at ``/openapi.json`` is ``dfsp.openapi.OPENAPI``, written as data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from clearing.connector import CentralRefused
from clearing.payment_requests import PaymentRequestError
from dfsp.cash import Cash
from dfsp.customers import LANGUAGES, Customers
from dfsp.domain.accounts import (
    AccountNotEmpty,
    AccountRuleViolation,
    AlreadyHolder,
    CommissionAccountRestricted,
    InvalidAccountRequest,
    LastSignatoryCannotBeRemoved,
    NoOtherAccount,
    NotAccountHolder,
    NotSignatory,
    OwnerAlwaysSignatory,
    OwnerCannotBeRemoved,
    PrimaryAccountCannotClose,
    TooManyAccounts,
    TooManyHolders,
    UnknownAccount,
    UnknownHolder,
)
from dfsp.domain.customers import (
    AlreadyRegistered,
    Customer,
    CustomerAccount,
    CustomerRole,
    HolderInfo,
    PersonAlreadyRegistered,
    RegistrationRefused,
    TryAgain,
    UnknownCustomer,
    UserNumberTaken,
)
from dfsp.domain.fees import FeeError
from dfsp.domain.identifiers import IdentifierError, UserNumbersExhausted
from dfsp.domain.invoices import (
    ApprovalExpired,
    BuyerIsPayee,
    InvoiceAccountNotAllowed,
    InvoiceBeingPaid,
    InvoiceError,
    InvoiceNotPending,
    NotAgent,
    NotInvoiceBuyer,
    NotMerchant,
    UnknownBuyer,
    UnknownInvoice,
)
from dfsp.domain.limits import LimitViolation
from dfsp.domain.payments import (
    FraudViolation,
    InvalidAmount,
    LimitExceeded,
    QuoteChanged,
    SendNotAllowed,
    SendQuote,
    SendResult,
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
    TransferExpired,
)
from dfsp.forensic import ForensicLogUnavailable
from dfsp.interledger import (
    ClearingUnavailable,
    Interledger,
    NetDebitCapReached,
    TransferNotAllowed,
)
from dfsp.invoices import Invoices
from dfsp.openapi import OPENAPI
from dfsp.payments import MAX_STATEMENT_ROWS, Payments
from ussdloop.http import BadRequest, error_middleware, read_json_object, string_field
from ussdloop.metrics import Metric
from ussdloop.money import Money, MoneyError

MAX_BODY = 16384
MAX_ID_CHARS = 64
MAX_NAME_CHARS = 100
MAX_AMOUNT_CHARS = 32

ErrorFields = Callable[[Any], dict[str, Any]]
MetricsSource = Callable[[], Awaitable[Iterable[Metric]]]


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
    FraudViolation: (403, _no_fields),  # SenderBlocked, ReceiverBlocked
    QuoteChanged: (409, _no_fields),
    TransferConflict: (409, _no_fields),
    SendNotAllowed: (403, _no_fields),
    StatementNotAllowed: (403, _no_fields),
    InvalidAmount: (400, _no_fields),
    CurrencyMismatch: (400, _no_fields),
    FeeError: (400, _no_fields),
    InvalidRequest: (400, _no_fields),
    TryAgain: (409, _no_fields),
    # accounts and holders (dfsp.domain.accounts, .holders)
    UnknownAccount: (404, _no_fields),
    UnknownHolder: (404, _no_fields),
    NotAccountHolder: (403, _no_fields),
    NotSignatory: (403, _no_fields),
    CommissionAccountRestricted: (403, _no_fields),
    InvalidAccountRequest: (400, _no_fields),
    PrimaryAccountCannotClose: (409, _no_fields),
    AccountNotEmpty: (409, _no_fields),
    NoOtherAccount: (409, _no_fields),
    TooManyAccounts: (409, _no_fields),
    AlreadyHolder: (409, _no_fields),
    TooManyHolders: (409, _no_fields),
    LastSignatoryCannotBeRemoved: (409, _no_fields),
    OwnerCannotBeRemoved: (409, _no_fields),
    OwnerAlwaysSignatory: (409, _no_fields),
    AccountRuleViolation: (409, _no_fields),  # any rule added later
    # pending transactions: invoices and cash-out requests (dfsp.domain.invoices)
    NotMerchant: (403, _no_fields),
    NotAgent: (403, _no_fields),
    NotInvoiceBuyer: (403, _no_fields),
    InvoiceAccountNotAllowed: (403, _no_fields),
    UnknownBuyer: (404, _no_fields),
    UnknownInvoice: (404, _no_fields),
    BuyerIsPayee: (409, _no_fields),
    InvoiceNotPending: (409, lambda e: {"state": str(e.state)}),
    InvoiceBeingPaid: (409, _no_fields),
    ApprovalExpired: (409, _no_fields),
    TransferExpired: (409, _no_fields),  # an approval's hold ran out before it executed
    InvoiceError: (409, _no_fields),  # any refusal added later
    TransferNotAllowed: (403, lambda e: {"code": e.code}),
    RegistrationRefused: (403, _no_fields),
    ClearingUnavailable: (503, _no_fields),
    ForensicLogUnavailable: (503, _no_fields),  # no new transfer until the log is back
    NetDebitCapReached: (409, _no_fields),
    CentralRefused: (409, lambda e: {"centralError": e.id}),
    PaymentRequestError: (400, _no_fields),
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
    """A positive amount (what is paid)."""
    text, currency = _money_fields(body, name)
    return parse_amount(text, currency)


def _shown_fee(body: dict[str, Any]) -> Money:
    """The fee the payer was shown: zero is a fee too (own accounts, free schemes)."""
    text, currency = _money_fields(body, "fee")
    try:
        return Money.parse(text, currency)
    except MoneyError as error:
        raise BadRequest(f"'fee': {error}") from None


def _money_fields(body: dict[str, Any], name: str) -> tuple[str, str]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise BadRequest(f"{name!r} must be an object with 'amount' and 'currency'")
    return string_field(value, "amount", MAX_AMOUNT_CHARS), string_field(value, "currency", 3)


def _pin(body: dict[str, Any], name: str = "pin") -> Pin:
    return Pin(string_field(body, name, MAX_PIN_LENGTH))


def _id(body: dict[str, Any], name: str) -> str:
    return string_field(body, name, MAX_ID_CHARS)


def _limit(body: dict[str, Any]) -> int:
    value = body.get("limit", 8)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("'limit' must be a whole number")
    if not 1 <= value <= MAX_STATEMENT_ROWS:
        raise BadRequest(f"'limit' must be 1 to {MAX_STATEMENT_ROWS}")
    return value


def _flag(body: dict[str, Any], name: str, *, required: bool = False) -> bool:
    value = body.get(name)
    if value is None and not required:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name!r} must be true or false")
    return value


def _language(body: dict[str, Any]) -> str:
    language = string_field(body, "language", 8)
    if language not in LANGUAGES:
        raise BadRequest(f"'language' must be one of {', '.join(LANGUAGES)}")
    return language


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

    async def receiver(self, request: web.Request) -> web.Response:
        number = request.match_info["user_number"][:MAX_ID_CHARS]
        name, dfsp = await self._payments.receiver(number)
        return web.json_response({"userNumber": number, "name": name, "dfsp": dfsp})

    async def quote_send(self, request: web.Request) -> web.Response:
        quote = await self._quote(await self._body(request))
        return web.json_response(_quote_json(quote))

    async def send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        pin, transfer_id = _pin(body), _id(body, "transferId")
        quote = await self._quote(body)
        if "fee" in body and _shown_fee(body) != quote.fee:
            raise QuoteChanged(f"the fee is now {quote.fee} {quote.currency}")
        result = await self._payments.send(quote, pin, transfer_id)
        return web.json_response(_transfer_json(result))

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

    # --- accounts and holders: parse, check the actor's PIN, then change -----------------

    async def accounts(self, request: web.Request) -> web.Response:
        accounts = await self._customers.accounts_of(request.match_info["customer_id"])
        return web.json_response({"accounts": [_account_json(a) for a in accounts]})

    async def add_account(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id = request.match_info["customer_id"]
        name, primary = string_field(body, "name", MAX_NAME_CHARS), _flag(body, "primary")
        await self._customers.check_pin(customer_id, _pin(body))
        account_id = await self._customers.add_account(customer_id, name, primary=primary)
        return web.json_response(await self._account(customer_id, account_id), status=201)

    async def rename_account(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        name = string_field(body, "name", MAX_NAME_CHARS)
        await self._customers.check_pin(customer_id, _pin(body))
        await self._customers.rename_account(customer_id, account_id, name)
        return web.json_response(await self._account(customer_id, account_id))

    async def make_primary(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        await self._customers.check_pin(customer_id, _pin(body))
        await self._customers.make_primary(customer_id, account_id)
        return web.json_response(await self._account(customer_id, account_id))

    async def close_account(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        await self._customers.check_pin(customer_id, _pin(body))
        closed = await self._customers.close_account(customer_id, account_id)
        return web.json_response(
            {
                "customerRemoved": closed.customer_removed,
                "leftWithoutAccount": sorted(closed.left_without_account),
            }
        )

    async def add_holder(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        user_number = string_field(body, "holderUserNumber", 32)
        signatory = _flag(body, "signatory")
        await self._customers.check_pin(customer_id, _pin(body))
        holder = await self._customers.add_holder(
            customer_id, account_id, user_number, signatory=signatory
        )
        line = HolderInfo(
            holder.id,
            str(holder.user_number),
            holder.first_name,
            holder.last_name,
            signatory,
            False,
        )
        return web.json_response(_holder_json(line))

    async def remove_holder(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        await self._customers.check_pin(customer_id, _pin(body))
        left_without = await self._customers.remove_holder(
            customer_id, account_id, request.match_info["holder_id"]
        )
        return web.json_response({"leftWithoutAccount": left_without})

    async def set_signatory(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer_id, account_id = _id(body, "customerId"), request.match_info["account_id"]
        signatory = _flag(body, "signatory", required=True)
        await self._customers.check_pin(customer_id, _pin(body))
        await self._customers.set_signatory(
            customer_id, account_id, request.match_info["holder_id"], signatory=signatory
        )
        return web.json_response(await self._account(customer_id, account_id))

    # --- the customer's settings --------------------------------------------------------

    async def change_pin(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        old_pin, new_pin = _pin(body, "oldPin"), _pin(body, "newPin")
        await self._customers.change_pin(request.match_info["customer_id"], old_pin, new_pin)
        return web.json_response({"status": "changed"})

    async def set_language(self, request: web.Request) -> web.Response:
        language = _language(await self._body(request))
        customer_id = request.match_info["customer_id"]
        await self._customers.set_language(customer_id, language)
        customer = await self._customers.customer(customer_id)
        return web.json_response(await self._customer_json(customer))

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
            to_account_id=string_field(body, "receiverAccountId", MAX_ID_CHARS, required=False)
            or None,
        )

    async def _account(self, customer_id: str, account_id: str) -> dict[str, Any]:
        """The account as ``customer_id`` now sees it."""
        accounts = await self._customers.accounts_of(customer_id)
        account = next((a for a in accounts if a.id == account_id), None)
        if account is None:
            raise UnknownAccount(account_id, customer_id)
        return _account_json(account)

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


def _account_json(account: CustomerAccount) -> dict[str, Any]:
    """An account as one holder sees it; no ledger id, no balance."""
    rights = account.permissions
    return {
        "accountId": account.id,
        "name": account.name,
        "currency": account.currency,
        "kind": str(account.kind),
        "primary": account.primary,
        "permissions": {
            "view": rights.can_view,
            "invoice": rights.can_invoice,
            "send": rights.can_send,
            "manage": rights.can_manage,
        },
        "holders": [_holder_json(holder) for holder in account.holders],
    }


def _holder_json(holder: HolderInfo) -> dict[str, Any]:
    return {
        "customerId": holder.customer_id,
        "userNumber": holder.user_number,
        "firstName": holder.first_name,
        "lastName": holder.last_name,
        "signatory": holder.signatory,
        "owner": holder.owner,
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
        "receiverFee": money_json(quote.quote.receiver_fee),  # kept back (an agent's cash-in)
        "schemeFee": money_json(quote.quote.scheme_fee),  # the centre's, across DFSPs
        "receiverDfsp": None if quote.remote is None else quote.remote.dfsp,
    } | ({"receiverAccountId": quote.receiver_account_id} if quote.own_accounts else {})


def _transfer_json(result: SendResult) -> dict[str, Any]:
    return {
        "transferId": result.transfer_id,
        "status": str(result.status),
        "receiverName": result.receiver_name,
        "amount": money_json(result.amount),
        "fee": money_json(result.fee),
    }


def dfsp_app(
    customers: Customers,
    payments: Payments,
    invoices: Invoices,
    cash: Cash,
    metrics: MetricsSource,
    *,
    interledger: Interledger | None = None,
    max_body: int = MAX_BODY,
) -> web.Application:
    """The API over the services; ``metrics`` gathers what ``GET /metrics`` shows;
    with ``interledger``, the routes other DFSPs call too."""
    from dfsp.api_interledger import InterledgerRoutes  # they build on this module's helpers
    from dfsp.api_invoices import InvoiceRoutes

    routes = _Routes(customers, payments, max_body)
    app = web.Application(
        client_max_size=max_body, middlewares=[error_middleware(), answer_domain_errors]
    )
    app.router.add_post("/customers", routes.register)
    app.router.add_get("/customers/by-msisdn/{msisdn}", routes.by_msisdn)
    app.router.add_get("/customers/{user_number}", routes.by_user_number)
    app.router.add_get("/receivers/{user_number}", routes.receiver)
    app.router.add_post("/quotes/send", routes.quote_send)
    app.router.add_post("/transfers", routes.send)
    app.router.add_post("/accounts/{account_id}/balance", routes.balance)
    app.router.add_post("/accounts/{account_id}/ministatement", routes.ministatement)
    app.router.add_get("/customers/{customer_id}/accounts", routes.accounts)
    app.router.add_post("/customers/{customer_id}/accounts", routes.add_account)
    app.router.add_post("/customers/{customer_id}/pin", routes.change_pin)
    app.router.add_put("/customers/{customer_id}/language", routes.set_language)
    app.router.add_post("/accounts/{account_id}/rename", routes.rename_account)
    app.router.add_post("/accounts/{account_id}/primary", routes.make_primary)
    app.router.add_post("/accounts/{account_id}/close", routes.close_account)
    app.router.add_post("/accounts/{account_id}/holders", routes.add_holder)
    app.router.add_post("/accounts/{account_id}/holders/{holder_id}/remove", routes.remove_holder)
    app.router.add_post(
        "/accounts/{account_id}/holders/{holder_id}/signatory", routes.set_signatory
    )
    InvoiceRoutes(customers, invoices, cash, metrics, max_body).add_to(app)
    if interledger is not None:
        InterledgerRoutes(interledger, max_body, invoices.across).add_to(app)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/openapi.json", routes.openapi)
    return app
