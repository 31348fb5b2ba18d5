"""The typed HTTP client of the DFSP API (``dfsp.api``): what the gateway uses.

One async method per route, answers as dataclasses with ``Money`` amounts, refusals as
``DfspError`` subclasses named after the API's error ids (``WrongPin`` ->
``WrongPinError`` with ``attempts_left``, ``InsufficientFunds`` ->
``InsufficientFundsError`` with ``available``, ``WeakPin`` -> ``WeakPinError`` with
``reason``...). Every refusal by an account rule (the ids in ``ACCOUNT_RULE_IDS``:
``NotSignatory``, ``AccountNotEmpty``...) is one ``AccountRuleError`` whose ``id`` the
menus map to a screen text. An id this client does not know is a plain ``DfspError``
carrying the id and the status: so are the refusals of pending transactions
(``NotMerchant``, ``NotAgent``, ``UnknownBuyer``, ``UnknownInvoice``, ``NotInvoiceBuyer``,
``InvoiceNotPending``, ``InvoiceBeingPaid``, ``ApprovalExpired``...).

Pending transactions (a merchant's invoice, an agent's cash-out request) answer as
``InvoiceInfo``; approving one or paying a cash-in answers as a send does
(``SendQuote`` before the PIN, ``SendResult`` after). ``metrics`` is the Prometheus
text of ``GET /metrics``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from ussdloop.money import Money

MAX_ANSWER_BYTES = 1 << 20


# --- errors -----------------------------------------------------------------------------


class DfspError(Exception):
    """A refusal of the DFSP: ``id`` is the API's error id, ``status`` the HTTP status."""

    error_id: ClassVar[str] = ""

    def __init__(self, message: str, *, id: str | None = None, status: int = 0) -> None:
        super().__init__(message)
        self.id = id or self.error_id or type(self).__name__
        self.status = status


class BadRequestError(DfspError):
    error_id = "BadRequest"


class WrongPinError(DfspError):
    error_id = "WrongPin"

    def __init__(self, message: str, *, attempts_left: int, status: int = 403) -> None:
        super().__init__(message, status=status)
        self.attempts_left = attempts_left


class PinLockedError(DfspError):
    error_id = "PinLocked"


class WeakPinError(DfspError):
    """``reason`` is the API's ``WeakPinReason`` value (``too_short``, ``one_digit``...)."""

    error_id = "WeakPin"

    def __init__(self, message: str, *, reason: str, status: int = 400) -> None:
        super().__init__(message, status=status)
        self.reason = reason


class UnknownCustomerError(DfspError):
    error_id = "UnknownCustomer"


class UnknownReceiverError(DfspError):
    error_id = "UnknownReceiver"


class AlreadyRegisteredError(DfspError):
    error_id = "AlreadyRegistered"


class PersonAlreadyRegisteredError(DfspError):
    error_id = "PersonAlreadyRegistered"


class InsufficientFundsError(DfspError):
    error_id = "InsufficientFunds"

    def __init__(self, message: str, *, available: Money, status: int = 409) -> None:
        super().__init__(message, status=status)
        self.available = available


class LimitExceededError(DfspError):
    error_id = "LimitExceeded"

    def __init__(self, message: str, *, limit: str, status: int = 409) -> None:
        super().__init__(message, status=status)
        self.limit = limit


class InvalidAmountError(DfspError):
    error_id = "InvalidAmount"


class QuoteChangedError(DfspError):
    error_id = "QuoteChanged"


class SendNotAllowedError(DfspError):
    error_id = "SendNotAllowed"


# The AccountRuleViolation classes of dfsp.domain.accounts, by name (the API's ids).
ACCOUNT_RULE_IDS: frozenset[str] = frozenset(
    {
        "AccountRuleViolation",
        "InvalidAccountRequest",
        "UnknownAccount",
        "NotAccountHolder",
        "NotSignatory",
        "PrimaryAccountCannotClose",
        "AccountNotEmpty",
        "CommissionAccountRestricted",
        "NoOtherAccount",
        "TooManyAccounts",
        "UnknownHolder",
        "AlreadyHolder",
        "TooManyHolders",
        "LastSignatoryCannotBeRemoved",
        "OwnerCannotBeRemoved",
        "OwnerAlwaysSignatory",
    }
)


class AccountRuleError(DfspError):
    """An account rule refused the change (nothing changed); ``id`` says which rule."""

    def __init__(self, message: str, *, id: str, status: int = 409) -> None:
        if id not in ACCOUNT_RULE_IDS:
            raise ValueError(f"{id!r} is not an account rule")
        super().__init__(message, id=id, status=status)


_PLAIN_ERRORS: dict[str, type[DfspError]] = {
    kind.error_id: kind
    for kind in (
        BadRequestError,
        PinLockedError,
        UnknownCustomerError,
        UnknownReceiverError,
        AlreadyRegisteredError,
        PersonAlreadyRegisteredError,
        InvalidAmountError,
        QuoteChangedError,
        SendNotAllowedError,
    )
}


def error_from(status: int, body: Any) -> DfspError:
    """The typed error of an error answer ``{"id": ..., "message": ..., ...}``."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        return DfspError(f"HTTP {status} without an error body", id="HttpError", status=status)
    error_id, message = body["id"], str(body.get("message") or body["id"])
    if error_id == WrongPinError.error_id:
        return WrongPinError(message, attempts_left=int(body["attemptsLeft"]), status=status)
    if error_id == InsufficientFundsError.error_id:
        available = money_from(body["available"])
        return InsufficientFundsError(message, available=available, status=status)
    if error_id == LimitExceededError.error_id:
        return LimitExceededError(message, limit=str(body["limit"]), status=status)
    if error_id == WeakPinError.error_id:
        return WeakPinError(message, reason=str(body.get("reason", "")), status=status)
    if error_id in ACCOUNT_RULE_IDS:
        return AccountRuleError(message, id=error_id, status=status)
    kind = _PLAIN_ERRORS.get(error_id)
    if kind is None:
        return DfspError(message, id=error_id, status=status)
    return kind(message, status=status)


# --- answers ----------------------------------------------------------------------------


def money_from(value: Any) -> Money:
    return Money.parse(value["amount"], value["currency"])


def money_json(value: Money) -> dict[str, str]:
    return {"amount": str(value), "currency": value.currency}


@dataclass(frozen=True)
class CustomerInfo:
    """A customer as the DFSP shows them (no PIN, no identity documents)."""

    customer_id: str
    user_number: str
    msisdn: str
    first_name: str
    last_name: str
    role: str
    language: str
    pin_locked: bool
    primary_account_id: str | None
    currency: str | None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CustomerInfo:
        return cls(
            customer_id=body["customerId"],
            user_number=body["userNumber"],
            msisdn=body["msisdn"],
            first_name=body["firstName"],
            last_name=body["lastName"],
            role=body["role"],
            language=body["language"],
            pin_locked=bool(body["pinLocked"]),
            primary_account_id=body.get("primaryAccountId"),
            currency=body.get("currency"),
        )


@dataclass(frozen=True)
class HolderLine:
    """One holder of an account, as account information lists them."""

    customer_id: str
    user_number: str
    first_name: str
    last_name: str
    signatory: bool
    owner: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> HolderLine:
        return cls(
            customer_id=body["customerId"],
            user_number=body["userNumber"],
            first_name=body["firstName"],
            last_name=body["lastName"],
            signatory=bool(body["signatory"]),
            owner=bool(body["owner"]),
        )


@dataclass(frozen=True)
class AccountPermissions:
    """What the customer may do on the account (role rules apply on top)."""

    view: bool  # balance and ministatement
    invoice: bool
    send: bool
    manage: bool  # rename, close, holders, signatories


@dataclass(frozen=True)
class AccountInfo:
    """An account as one of its holders sees it (no balance)."""

    account_id: str
    name: str
    currency: str
    kind: str  # "regular" or "commission"
    primary: bool  # this customer's primary account
    permissions: AccountPermissions
    holders: tuple[HolderLine, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AccountInfo:
        rights = body["permissions"]
        return cls(
            account_id=body["accountId"],
            name=body["name"],
            currency=body["currency"],
            kind=body["kind"],
            primary=bool(body["primary"]),
            permissions=AccountPermissions(
                view=bool(rights["view"]),
                invoice=bool(rights["invoice"]),
                send=bool(rights["send"]),
                manage=bool(rights["manage"]),
            ),
            holders=tuple(HolderLine.from_json(holder) for holder in body["holders"]),
        )


@dataclass(frozen=True)
class AccountClosure:
    customer_removed: bool  # it was the closer's last account: they are no longer a customer
    left_without_account: tuple[str, ...]  # other holders' customer ids who now hold none


@dataclass(frozen=True)
class SendQuote:
    """What the sender confirms before the PIN; ``DfspClient.send`` pays it."""

    sender_customer_id: str
    sender_account_id: str
    receiver_user_number: str
    receiver_name: str
    amount: Money
    fee: Money
    total: Money
    receiver_account_id: str | None = None  # set for a payment to one's own account
    receiver_fee: Money | None = None  # kept back from what the receiver gets (cash-in)
    scheme_fee: Money | None = None  # the centre's fee, for a receiver at another DFSP
    receiver_dfsp: str | None = None  # None: the receiver is at this DFSP

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SendQuote:
        return cls(
            sender_customer_id=body["senderCustomerId"],
            sender_account_id=body["senderAccountId"],
            receiver_user_number=body["receiverUserNumber"],
            receiver_name=body["receiverName"],
            amount=money_from(body["amount"]),
            fee=money_from(body["fee"]),
            total=money_from(body["total"]),
            receiver_account_id=body.get("receiverAccountId"),
            receiver_fee=money_from(body["receiverFee"]) if "receiverFee" in body else None,
            scheme_fee=money_from(body["schemeFee"]) if "schemeFee" in body else None,
            receiver_dfsp=body.get("receiverDfsp"),
        )

    def to_json(self) -> dict[str, Any]:
        own = {"receiverAccountId": self.receiver_account_id} if self.receiver_account_id else {}
        return own | {
            "senderCustomerId": self.sender_customer_id,
            "senderAccountId": self.sender_account_id,
            "receiverUserNumber": self.receiver_user_number,
            "amount": money_json(self.amount),
            "fee": money_json(self.fee),
        }


@dataclass(frozen=True)
class Receiver:
    user_number: str
    name: str
    dfsp: str | None  # None: a customer of this DFSP


@dataclass(frozen=True)
class SendResult:
    transfer_id: str
    status: str
    receiver_name: str
    amount: Money
    fee: Money


@dataclass(frozen=True)
class InvoiceInfo:
    """A pending transaction as either party sees it: names, never a phone number.
    ``kind`` is ``invoice`` (a merchant's) or ``cash_out`` (an agent's request);
    ``state`` ``pending``, ``paid`` or ``rejected``."""

    invoice_id: str
    kind: str
    state: str
    amount: Money
    payee_name: str  # the merchant (or agent), who is paid
    buyer_name: str  # the customer asked to pay
    created_at: datetime

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> InvoiceInfo:
        return cls(
            invoice_id=body["invoiceId"],
            kind=body["kind"],
            state=body["state"],
            amount=money_from(body["amount"]),
            payee_name=body["payeeName"],
            buyer_name=body["buyerName"],
            created_at=datetime.fromisoformat(body["createdAt"]),
        )


@dataclass(frozen=True)
class PendingInvoices:
    """The customer's pending transactions, newest first: ``incoming`` to pay or reject,
    ``outgoing`` asked by them and not yet answered."""

    incoming: tuple[InvoiceInfo, ...]
    outgoing: tuple[InvoiceInfo, ...]


@dataclass(frozen=True)
class StatementLine:
    name: str
    amount: Money
    at: datetime


# --- the client -------------------------------------------------------------------------


class DfspClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session

    async def register(
        self,
        *,
        msisdn: str,
        first_name: str,
        last_name: str,
        date_of_birth: str,
        national_id: str,
        pin: str,
        account_name: str = "main",
        role: str = "customer",
        language: str = "en",
        user_number: str | None = None,
    ) -> CustomerInfo:
        """Register a customer; ``user_number`` asks for that number (when the person has
        one already), by default the DFSP allocates one."""
        chosen = {} if user_number is None else {"userNumber": user_number}
        body = await self._call(
            "POST",
            "/customers",
            chosen
            | {
                "msisdn": msisdn,
                "firstName": first_name,
                "lastName": last_name,
                "dateOfBirth": date_of_birth,
                "nationalId": national_id,
                "accountName": account_name,
                "role": role,
                "pin": pin,
                "language": language,
            },
        )
        return CustomerInfo.from_json(body)

    async def customer_by_msisdn(self, msisdn: str) -> CustomerInfo:
        body = await self._call("GET", f"/customers/by-msisdn/{quote(msisdn, safe='')}")
        return CustomerInfo.from_json(body)

    async def customer_by_user_number(self, user_number: str) -> CustomerInfo:
        body = await self._call("GET", f"/customers/{quote(user_number, safe='')}")
        return CustomerInfo.from_json(body)

    async def receiver(self, user_number: str) -> Receiver:
        """Whoever has ``user_number``, here or (through the centre) at another DFSP."""
        body = await self._call("GET", f"/receivers/{quote(user_number, safe='')}")
        return Receiver(body["userNumber"], body["name"], body.get("dfsp"))

    async def quote_send(
        self,
        sender_customer_id: str,
        sender_account_id: str,
        receiver_user_number: str,
        amount: Money,
        *,
        to_account_id: str | None = None,
    ) -> SendQuote:
        """The quote of a payment; ``to_account_id`` picks one of one's own accounts when
        paying oneself (no fee, no limits)."""
        own = {"receiverAccountId": to_account_id} if to_account_id else {}
        body = await self._call(
            "POST",
            "/quotes/send",
            own
            | {
                "senderCustomerId": sender_customer_id,
                "senderAccountId": sender_account_id,
                "receiverUserNumber": receiver_user_number,
                "amount": money_json(amount),
            },
        )
        return SendQuote.from_json(body)

    async def send(self, quote: SendQuote, pin: str, transfer_id: str) -> SendResult:
        """Pay ``quote``; retrying with the same ``transfer_id`` pays once."""
        request = {**quote.to_json(), "pin": pin, "transferId": transfer_id}
        return _send_result(await self._call("POST", "/transfers", request))

    async def balance(self, customer_id: str, account_id: str, pin: str) -> Money:
        path = f"/accounts/{quote(account_id, safe='')}/balance"
        body = await self._call("POST", path, {"customerId": customer_id, "pin": pin})
        return money_from(body["available"])

    async def ministatement(
        self, customer_id: str, account_id: str, pin: str, limit: int = 8
    ) -> list[StatementLine]:
        path = f"/accounts/{quote(account_id, safe='')}/ministatement"
        request = {"customerId": customer_id, "pin": pin, "limit": limit}
        body = await self._call("POST", path, request)
        return [
            StatementLine(row["name"], money_from(row["amount"]), datetime.fromisoformat(row["at"]))
            for row in body["rows"]
        ]

    # --- accounts and holders (every change takes the actor's PIN) ----------------------

    async def accounts(self, customer_id: str) -> tuple[AccountInfo, ...]:
        """The open accounts the customer holds, oldest first (no PIN, no balances)."""
        body = await self._call("GET", f"/customers/{quote(customer_id, safe='')}/accounts")
        return tuple(AccountInfo.from_json(account) for account in body["accounts"])

    async def add_account(
        self, customer_id: str, name: str, pin: str, *, primary: bool = False
    ) -> AccountInfo:
        path = f"/customers/{quote(customer_id, safe='')}/accounts"
        body = await self._call("POST", path, {"name": name, "primary": primary, "pin": pin})
        return AccountInfo.from_json(body)

    async def rename_account(
        self, customer_id: str, account_id: str, name: str, pin: str
    ) -> AccountInfo:
        request = {"customerId": customer_id, "name": name, "pin": pin}
        body = await self._call("POST", _account_path(account_id, "rename"), request)
        return AccountInfo.from_json(body)

    async def make_primary(self, customer_id: str, account_id: str, pin: str) -> AccountInfo:
        request = {"customerId": customer_id, "pin": pin}
        body = await self._call("POST", _account_path(account_id, "primary"), request)
        return AccountInfo.from_json(body)

    async def close_account(self, customer_id: str, account_id: str, pin: str) -> AccountClosure:
        request = {"customerId": customer_id, "pin": pin}
        body = await self._call("POST", _account_path(account_id, "close"), request)
        return AccountClosure(bool(body["customerRemoved"]), tuple(body["leftWithoutAccount"]))

    async def add_holder(
        self,
        customer_id: str,
        account_id: str,
        holder_user_number: str,
        pin: str,
        *,
        signatory: bool = False,
    ) -> HolderLine:
        request = {
            "customerId": customer_id,
            "holderUserNumber": holder_user_number,
            "signatory": signatory,
            "pin": pin,
        }
        body = await self._call("POST", _account_path(account_id, "holders"), request)
        return HolderLine.from_json(body)

    async def remove_holder(
        self, customer_id: str, account_id: str, holder_id: str, pin: str
    ) -> bool:
        """Remove a holder; True when they now hold no account at all."""
        path = _account_path(account_id, "holders", holder_id, "remove")
        body = await self._call("POST", path, {"customerId": customer_id, "pin": pin})
        return bool(body["leftWithoutAccount"])

    async def set_signatory(
        self, customer_id: str, account_id: str, holder_id: str, pin: str, *, signatory: bool
    ) -> AccountInfo:
        path = _account_path(account_id, "holders", holder_id, "signatory")
        request = {"customerId": customer_id, "signatory": signatory, "pin": pin}
        return AccountInfo.from_json(await self._call("POST", path, request))

    # --- pending transactions: invoices and cash-out requests ----------------------------

    async def create_invoice(
        self,
        merchant_customer_id: str,
        merchant_account_id: str,
        buyer_user_number: str,
        amount: Money,
    ) -> InvoiceInfo:
        """A merchant asks the buyer with this user number to pay into the account (no
        PIN: nothing moves until the buyer approves); the buyer gets a USSD push."""
        request = {
            "merchantCustomerId": merchant_customer_id,
            "merchantAccountId": merchant_account_id,
            "buyerUserNumber": buyer_user_number,
            "amount": money_json(amount),
        }
        return InvoiceInfo.from_json(await self._call("POST", "/invoices", request))

    async def request_cash_out(
        self,
        agent_customer_id: str,
        agent_account_id: str,
        customer_user_number: str,
        amount: Money,
    ) -> InvoiceInfo:
        """An agent asks the customer to approve a cash-out (on the customer's phone,
        with the customer's PIN); the agent hands out the cash once it is paid."""
        request = {
            "agentCustomerId": agent_customer_id,
            "agentAccountId": agent_account_id,
            "customerUserNumber": customer_user_number,
            "amount": money_json(amount),
        }
        return InvoiceInfo.from_json(await self._call("POST", "/cash-out-requests", request))

    async def pending_invoices(self, customer_id: str) -> PendingInvoices:
        body = await self._call("GET", f"/customers/{quote(customer_id, safe='')}/invoices")
        return PendingInvoices(
            incoming=tuple(InvoiceInfo.from_json(line) for line in body["incoming"]),
            outgoing=tuple(InvoiceInfo.from_json(line) for line in body["outgoing"]),
        )

    async def quote_invoice(self, customer_id: str, invoice_id: str, account_id: str) -> SendQuote:
        """What paying the invoice from ``account_id`` costs (the fee before the PIN)."""
        request = {"customerId": customer_id, "accountId": account_id}
        return SendQuote.from_json(
            await self._call("POST", _invoice_path(invoice_id, "quote"), request)
        )

    async def approve_invoice(
        self, customer_id: str, invoice_id: str, account_id: str, pin: str, transfer_id: str
    ) -> SendResult:
        """Pay the invoice with the buyer's PIN; retrying with the same ``transfer_id``
        pays once."""
        request = {
            "customerId": customer_id,
            "accountId": account_id,
            "pin": pin,
            "transferId": transfer_id,
        }
        return _send_result(await self._call("POST", _invoice_path(invoice_id, "approve"), request))

    async def reject_invoice(self, customer_id: str, invoice_id: str) -> InvoiceInfo:
        request = {"customerId": customer_id}
        body = await self._call("POST", _invoice_path(invoice_id, "reject"), request)
        return InvoiceInfo.from_json(body)

    # --- agent cash-in ----------------------------------------------------------------

    async def quote_cash_in(
        self,
        agent_customer_id: str,
        agent_account_id: str,
        customer_user_number: str,
        amount: Money,
    ) -> SendQuote:
        """The customer's name (``receiver_name``) and the cash-in fee, before the
        agent's PIN."""
        request = {
            "agentCustomerId": agent_customer_id,
            "agentAccountId": agent_account_id,
            "customerUserNumber": customer_user_number,
            "amount": money_json(amount),
        }
        return SendQuote.from_json(await self._call("POST", "/quotes/cash-in", request))

    async def cash_in(self, quote: SendQuote, pin: str, transfer_id: str) -> SendResult:
        """Pay a ``quote_cash_in`` quote with the agent's PIN; retrying with the same
        ``transfer_id`` pays once; ``QuoteChangedError`` if the fee shown is stale."""
        request = {
            "agentCustomerId": quote.sender_customer_id,
            "agentAccountId": quote.sender_account_id,
            "customerUserNumber": quote.receiver_user_number,
            "amount": money_json(quote.amount),
            "fee": money_json(quote.fee),
            "pin": pin,
            "transferId": transfer_id,
        }
        return _send_result(await self._call("POST", "/cash-ins", request))

    # --- the customer's settings ----------------------------------------------------------

    async def change_pin(self, customer_id: str, old_pin: str, new_pin: str) -> None:
        path = f"/customers/{quote(customer_id, safe='')}/pin"
        await self._call("POST", path, {"oldPin": old_pin, "newPin": new_pin})

    async def set_language(self, customer_id: str, language: str) -> CustomerInfo:
        path = f"/customers/{quote(customer_id, safe='')}/language"
        return CustomerInfo.from_json(await self._call("PUT", path, {"language": language}))

    async def health(self) -> bool:
        body = await self._call("GET", "/health")
        return body.get("status") == "ok"

    async def openapi(self) -> dict[str, Any]:
        return await self._call("GET", "/openapi.json")

    async def metrics(self) -> str:
        """The DFSP's figures as Prometheus text."""
        async with self._session.get(self._base_url + "/metrics") as response:
            raw = await _read_bounded(response)
            if response.status >= 400:
                try:
                    answer = json.loads(raw)
                except ValueError:
                    answer = None
                raise error_from(response.status, answer)
            return raw.decode("utf-8")

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        async with self._session.request(method, self._base_url + path, json=body) as response:
            raw = await _read_bounded(response)
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if response.status >= 400:
                raise error_from(response.status, answer)
            if not isinstance(answer, dict):
                raise DfspError("the answer is not a JSON object", id="BadAnswer", status=502)
            return answer


def _send_result(body: dict[str, Any]) -> SendResult:
    return SendResult(
        transfer_id=body["transferId"],
        status=body["status"],
        receiver_name=body["receiverName"],
        amount=money_from(body["amount"]),
        fee=money_from(body["fee"]),
    )


def _invoice_path(invoice_id: str, action: str) -> str:
    return f"/invoices/{quote(invoice_id, safe='')}/{action}"


def _account_path(account_id: str, *parts: str) -> str:
    return "/".join(["/accounts", *(quote(part, safe="") for part in (account_id, *parts))])


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise DfspError("the answer is too large", id="AnswerTooLarge", status=502)
        chunks.append(chunk)
    return b"".join(chunks)
