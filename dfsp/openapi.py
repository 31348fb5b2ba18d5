"""The OpenAPI 3.1 document of the DFSP API (``dfsp/api.py``, ``dfsp/api_invoices.py``),
written as data: customers, payments, account management (accounts, holders,
signatories), PIN change and language, pending transactions (invoices, cash-out
requests), agent cash-in, and the Prometheus ``/metrics``."""

from __future__ import annotations

from typing import Any

from dfsp.customers import LANGUAGES
from dfsp.domain.accounts import AccountKind
from dfsp.domain.customers import CustomerRole
from dfsp.domain.invoices import InvoiceKind, InvoiceState


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _operation(
    summary: str,
    answer: str,
    errors: dict[str, str],
    body: str | None = None,
    ok: str = "200",
    path: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        ok: {"description": answer, "content": {"application/json": {"schema": _ref(answer)}}}
    }
    for status, meaning in {"400": "bad input", **errors}.items():
        responses[status] = {
            "description": meaning,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if path:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _STRING} for name in path
        ]
    if body is not None:
        content = {"application/json": {"schema": _ref(body)}}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


_STRING = {"type": "string"}
_MONEY = _ref("Money")
_PIN_ERRORS = {"403": "WrongPin (attemptsLeft) or not allowed", "423": "PinLocked"}
_PIN_BODY = _object(
    ["customerId", "pin"], customerId=_STRING, pin=_STRING, limit={"type": "integer"}
)
_BOOLEAN = {"type": "boolean"}
_ACTOR = {"customerId": _STRING, "pin": _STRING}
_ACCOUNT_PATH = ("account_id",)
_HOLDER_PATH = ("account_id", "holder_id")
# What an account change may be refused with, besides a wrong or locked PIN (ids are
# the AccountRuleViolation class names of dfsp.domain.accounts).
_ACCOUNT_ERRORS = {
    "403": "WrongPin (attemptsLeft), NotAccountHolder, NotSignatory or CommissionAccountRestricted",
    "404": "UnknownCustomer or UnknownAccount",
    "423": "PinLocked",
}
_ACCOUNT_CONFLICTS = (
    "TryAgain or another AccountRuleViolation: PrimaryAccountCannotClose, AccountNotEmpty, "
    "TooManyAccounts, AlreadyHolder, TooManyHolders, OwnerCannotBeRemoved, "
    "OwnerAlwaysSignatory, LastSignatoryCannotBeRemoved, NoOtherAccount"
)


def _account_change(
    summary: str,
    answer: str,
    body: str,
    path: tuple[str, ...] = _ACCOUNT_PATH,
    not_found: str = _ACCOUNT_ERRORS["404"],
) -> dict[str, Any]:
    errors = {**_ACCOUNT_ERRORS, "404": not_found, "409": _ACCOUNT_CONFLICTS}
    return _operation(summary, answer, errors, body=body, path=path)


_QUOTE_FIELDS = {
    "senderCustomerId": _STRING,
    "senderAccountId": _STRING,
    "receiverUserNumber": _STRING,
    "amount": _MONEY,
}
_OWN_ACCOUNT = {"receiverAccountId": _STRING}  # optional: paying one of one's own accounts
_INVOICE_PATH = ("invoice_id",)
_ASK_FIELDS = {  # an agent's cash-out request and cash-in quote
    "agentCustomerId": _STRING,
    "agentAccountId": _STRING,
    "customerUserNumber": _STRING,
    "amount": _MONEY,
}
_INVOICE_ANSWER_ERRORS = {
    "403": "NotInvoiceBuyer",
    "404": "UnknownCustomer or UnknownInvoice",
    "409": "InvoiceNotPending (state) or InvoiceBeingPaid",
}
_ASK_ERRORS = {
    "400": "InvalidAmount, CurrencyMismatch or bad input",
    "403": "NotMerchant / NotAgent or InvoiceAccountNotAllowed",
    "404": "UnknownCustomer or UnknownBuyer",
    "409": "BuyerIsPayee",
}
_METRICS = {
    "get": {
        "summary": "The DFSP's figures (customers, transfers, notices, invoices)",
        "responses": {
            "200": {
                "description": "Prometheus text exposition 0.0.4",
                "content": {"text/plain": {"schema": _STRING}},
            }
        },
    }
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ussdloop DFSP", "version": "1"},
    "paths": {
        "/customers": {
            "post": _operation(
                "Register a customer with their primary account",
                "Customer",
                {"409": "AlreadyRegistered, PersonAlreadyRegistered or UserNumberTaken"},
                body="Registration",
                ok="201",
            )
        },
        "/customers/by-msisdn/{msisdn}": {
            "get": _operation(
                "A customer by phone number",
                "Customer",
                {"404": "UnknownCustomer"},
                path=("msisdn",),
            )
        },
        "/customers/{user_number}": {
            "get": _operation(
                "A customer by user number",
                "Customer",
                {"404": "UnknownCustomer"},
                path=("user_number",),
            )
        },
        "/receivers/{user_number}": {
            "get": _operation(
                "Who has a user number: here, or at another DFSP through the centre",
                "Receiver",
                {"404": "UnknownReceiver", "503": "ClearingUnavailable"},
                path=("user_number",),
            )
        },
        "/quotes/send": {
            "post": _operation(
                "Price a payment: receiver name, local fee and total",
                "Quote",
                {
                    "403": "SendNotAllowed, SenderBlocked or ReceiverBlocked",
                    "404": "UnknownCustomer or UnknownReceiver",
                },
                body="QuoteRequest",
            )
        },
        "/transfers": {
            "post": _operation(
                "Pay a quote after the PIN; idempotent on transferId",
                "Transfer",
                {
                    **_PIN_ERRORS,
                    "404": "UnknownReceiver",
                    "409": "InsufficientFunds (available), LimitExceeded (limit) or QuoteChanged",
                },
                body="TransferRequest",
            )
        },
        "/accounts/{account_id}/balance": {
            "post": _operation(
                "The available balance",
                "Balance",
                _PIN_ERRORS,
                body="PinRequest",
                path=("account_id",),
            )
        },
        "/accounts/{account_id}/ministatement": {
            "post": _operation(
                "The latest movements, newest first",
                "Ministatement",
                _PIN_ERRORS,
                body="PinRequest",
                path=("account_id",),
            )
        },
        "/customers/{customer_id}/accounts": {
            "get": _operation(
                "The open accounts the customer holds, oldest first (no balances)",
                "AccountList",
                {"404": "UnknownCustomer"},
                path=("customer_id",),
            ),
            "post": _operation(
                "Open another account; primary demotes the previous primary",
                "Account",
                {**_ACCOUNT_ERRORS, "409": _ACCOUNT_CONFLICTS},
                body="NewAccount",
                ok="201",
                path=("customer_id",),
            ),
        },
        "/customers/{customer_id}/pin": {
            "post": _operation(
                "Change the PIN (a wrong old PIN counts toward the lock-out)",
                "Done",
                {"400": "WeakPin (reason) or bad input", **_PIN_ERRORS, "404": "UnknownCustomer"},
                body="PinChange",
                path=("customer_id",),
            )
        },
        "/customers/{customer_id}/language": {
            "put": _operation(
                "Set the language of the customer's menus",
                "Customer",
                {"404": "UnknownCustomer"},
                body="Language",
                path=("customer_id",),
            )
        },
        "/accounts/{account_id}/rename": {
            "post": _account_change("Rename an account (a signatory)", "Account", "Rename")
        },
        "/accounts/{account_id}/primary": {
            "post": _account_change("Make an account the actor's primary", "Account", "Actor")
        },
        "/accounts/{account_id}/close": {
            "post": _account_change(
                "Close an empty, non-primary account (a signatory); the last one removes "
                "the customer",
                "Closed",
                "Actor",
            )
        },
        "/accounts/{account_id}/holders": {
            "post": _account_change(
                "Add a customer of this DFSP as a holder, by user number (a signatory)",
                "Holder",
                "NewHolder",
                not_found="UnknownCustomer (actor or user number) or UnknownAccount",
            )
        },
        "/accounts/{account_id}/holders/{holder_id}/remove": {
            "post": _account_change(
                "Remove a holder other than the owner (a signatory)",
                "HolderRemoved",
                "Actor",
                _HOLDER_PATH,
                not_found="UnknownCustomer, UnknownAccount or UnknownHolder",
            )
        },
        "/accounts/{account_id}/holders/{holder_id}/signatory": {
            "post": _account_change(
                "Give or take a non-owner holder's signatory rights (a signatory)",
                "Account",
                "Signatory",
                _HOLDER_PATH,
                not_found="UnknownCustomer, UnknownAccount or UnknownHolder",
            )
        },
        "/invoices": {
            "post": _operation(
                "A merchant invoices a buyer by user number (no PIN); the buyer is told",
                "Invoice",
                _ASK_ERRORS,
                body="NewInvoice",
                ok="201",
            )
        },
        "/cash-out-requests": {
            "post": _operation(
                "An agent asks a customer to approve a cash-out (on the customer's phone)",
                "Invoice",
                _ASK_ERRORS,
                body="CashRequest",
                ok="201",
            )
        },
        "/customers/{customer_id}/invoices": {
            "get": _operation(
                "The customer's pending transactions, newest first, both sides",
                "PendingInvoices",
                {"404": "UnknownCustomer"},
                path=("customer_id",),
            )
        },
        "/invoices/{invoice_id}/quote": {
            "post": _operation(
                "What paying the invoice from the account costs (before the PIN)",
                "Quote",
                {**_INVOICE_ANSWER_ERRORS, "403": "NotInvoiceBuyer or SendNotAllowed"},
                body="InvoiceQuoteRequest",
                path=_INVOICE_PATH,
            )
        },
        "/invoices/{invoice_id}/approve": {
            "post": _operation(
                "Pay the invoice with the buyer's PIN; idempotent on transferId",
                "Transfer",
                {
                    **_PIN_ERRORS,
                    "403": "WrongPin (attemptsLeft), NotInvoiceBuyer or SendNotAllowed",
                    "404": "UnknownCustomer or UnknownInvoice",
                    "409": "InsufficientFunds (available), LimitExceeded (limit), "
                    "InvoiceNotPending (state), InvoiceBeingPaid or ApprovalExpired",
                },
                body="InvoiceApproval",
                path=_INVOICE_PATH,
            )
        },
        "/invoices/{invoice_id}/reject": {
            "post": _operation(
                "Refuse the invoice (the buyer); the payee is told",
                "Invoice",
                _INVOICE_ANSWER_ERRORS,
                body="InvoiceRejection",
                path=_INVOICE_PATH,
            )
        },
        "/quotes/cash-in": {
            "post": _operation(
                "Price an agent's cash-in: the customer's name and the fee",
                "Quote",
                {
                    "403": "NotAgent or SendNotAllowed",
                    "404": "UnknownCustomer or UnknownReceiver",
                    "409": "BuyerIsPayee",
                },
                body="CashRequest",
            )
        },
        "/cash-ins": {
            "post": _operation(
                "Pay a cash-in quote with the agent's PIN; idempotent on transferId",
                "Transfer",
                {
                    **_PIN_ERRORS,
                    "403": "WrongPin (attemptsLeft), NotAgent or SendNotAllowed",
                    "404": "UnknownReceiver",
                    "409": "InsufficientFunds (available), LimitExceeded (limit) or QuoteChanged",
                },
                body="CashInRequest",
            )
        },
        "/metrics": _METRICS,
        "/health": {"get": _operation("Liveness", "Health", {})},
        "/openapi.json": {"get": _operation("This document", "OpenApi", {})},
    },
    "components": {
        "schemas": {
            "Error": _object(["id", "message"], id=_STRING, message=_STRING),
            "Money": _object(
                ["amount", "currency"],
                amount={"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
                currency=_STRING,
            ),
            "Registration": _object(
                [
                    "msisdn",
                    "firstName",
                    "lastName",
                    "dateOfBirth",
                    "nationalId",
                    "accountName",
                    "pin",
                ],
                msisdn=_STRING,
                firstName=_STRING,
                lastName=_STRING,
                dateOfBirth={"type": "string", "format": "date"},
                nationalId=_STRING,
                accountName=_STRING,
                role={"enum": [role.value for role in CustomerRole]},
                pin=_STRING,
                userNumber=_STRING,
                language=_STRING,
            ),
            "Customer": _object(
                ["customerId", "userNumber", "msisdn", "firstName", "lastName"],
                customerId=_STRING,
                userNumber=_STRING,
                msisdn=_STRING,
                firstName=_STRING,
                lastName=_STRING,
                role=_STRING,
                language=_STRING,
                pinLocked={"type": "boolean"},
                primaryAccountId={"type": ["string", "null"]},
                currency={"type": ["string", "null"]},
            ),
            "Receiver": _object(
                ["userNumber", "name", "dfsp"],
                userNumber=_STRING,
                name=_STRING,
                dfsp={"type": ["string", "null"]},
            ),
            "QuoteRequest": _object(list(_QUOTE_FIELDS), **_QUOTE_FIELDS, **_OWN_ACCOUNT),
            "Quote": _object(
                [*_QUOTE_FIELDS, "receiverName", "fee", "total"],
                **_QUOTE_FIELDS,
                **_OWN_ACCOUNT,
                receiverName=_STRING,
                fee=_MONEY,
                total=_MONEY,
                receiverFee=_MONEY,
                schemeFee=_MONEY,
                receiverDfsp={"type": ["string", "null"]},
            ),
            "TransferRequest": _object(
                [*_QUOTE_FIELDS, "pin", "transferId"],
                **_QUOTE_FIELDS,
                **_OWN_ACCOUNT,
                fee=_MONEY,
                pin=_STRING,
                transferId=_STRING,
            ),
            "Transfer": _object(
                ["transferId", "status", "receiverName", "amount", "fee"],
                transferId=_STRING,
                status=_STRING,
                receiverName=_STRING,
                amount=_MONEY,
                fee=_MONEY,
            ),
            "PinRequest": _PIN_BODY,
            "NewInvoice": _object(
                ["merchantCustomerId", "merchantAccountId", "buyerUserNumber", "amount"],
                merchantCustomerId=_STRING,
                merchantAccountId=_STRING,
                buyerUserNumber=_STRING,
                amount=_MONEY,
            ),
            "CashRequest": _object(list(_ASK_FIELDS), **_ASK_FIELDS),
            "CashInRequest": _object(
                [*_ASK_FIELDS, "pin", "transferId"],
                **_ASK_FIELDS,
                fee=_MONEY,
                pin=_STRING,
                transferId=_STRING,
            ),
            "Invoice": _object(
                ["invoiceId", "kind", "state", "amount", "payeeName", "buyerName", "createdAt"],
                invoiceId=_STRING,
                kind={"enum": [kind.value for kind in InvoiceKind]},
                state={"enum": [state.value for state in InvoiceState]},
                amount=_MONEY,
                payeeName=_STRING,
                buyerName=_STRING,
                createdAt={"type": "string", "format": "date-time"},
            ),
            "PendingInvoices": _object(
                ["incoming", "outgoing"],
                incoming={"type": "array", "items": _ref("Invoice")},
                outgoing={"type": "array", "items": _ref("Invoice")},
            ),
            "InvoiceQuoteRequest": _object(
                ["customerId", "accountId"], customerId=_STRING, accountId=_STRING
            ),
            "InvoiceApproval": _object(
                ["customerId", "accountId", "pin", "transferId"],
                customerId=_STRING,
                accountId=_STRING,
                pin=_STRING,
                transferId=_STRING,
            ),
            "InvoiceRejection": _object(["customerId"], customerId=_STRING),
            "Balance": _object(["accountId", "available"], accountId=_STRING, available=_MONEY),
            "Ministatement": _object(
                ["accountId", "rows"],
                accountId=_STRING,
                rows={
                    "type": "array",
                    "items": _object(
                        ["name", "amount", "at"],
                        name=_STRING,
                        amount=_MONEY,
                        at={"type": "string", "format": "date-time"},
                    ),
                },
            ),
            "Holder": _object(
                ["customerId", "userNumber", "firstName", "lastName", "signatory", "owner"],
                customerId=_STRING,
                userNumber=_STRING,
                firstName=_STRING,
                lastName=_STRING,
                signatory=_BOOLEAN,
                owner=_BOOLEAN,
            ),
            "Account": _object(
                ["accountId", "name", "currency", "kind", "primary", "permissions", "holders"],
                accountId=_STRING,
                name=_STRING,
                currency=_STRING,
                kind={"enum": [kind.value for kind in AccountKind]},
                primary=_BOOLEAN,
                permissions=_object(
                    ["view", "invoice", "send", "manage"],
                    view=_BOOLEAN,
                    invoice=_BOOLEAN,
                    send=_BOOLEAN,
                    manage=_BOOLEAN,
                ),
                holders={"type": "array", "items": _ref("Holder")},
            ),
            "AccountList": _object(
                ["accounts"], accounts={"type": "array", "items": _ref("Account")}
            ),
            "NewAccount": _object(["name", "pin"], name=_STRING, primary=_BOOLEAN, pin=_STRING),
            "Actor": _object(list(_ACTOR), **_ACTOR),
            "Rename": _object([*_ACTOR, "name"], **_ACTOR, name=_STRING),
            "NewHolder": _object(
                [*_ACTOR, "holderUserNumber"],
                **_ACTOR,
                holderUserNumber=_STRING,
                signatory=_BOOLEAN,
            ),
            "Signatory": _object([*_ACTOR, "signatory"], **_ACTOR, signatory=_BOOLEAN),
            "Closed": _object(
                ["customerRemoved", "leftWithoutAccount"],
                customerRemoved=_BOOLEAN,
                leftWithoutAccount={"type": "array", "items": _STRING},
            ),
            "HolderRemoved": _object(["leftWithoutAccount"], leftWithoutAccount=_BOOLEAN),
            "PinChange": _object(["oldPin", "newPin"], oldPin=_STRING, newPin=_STRING),
            "Language": _object(["language"], language={"enum": list(LANGUAGES)}),
            "Done": _object(["status"], status=_STRING),
            "Health": _object(["status"], status=_STRING),
            "OpenApi": {"type": "object"},
        }
    },
}
