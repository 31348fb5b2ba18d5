"""The OpenAPI 3.1 document of the DFSP API (``dfsp/api.py``), written as data."""

from __future__ import annotations

from typing import Any

from dfsp.domain.customers import CustomerRole


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
_QUOTE_FIELDS = {
    "senderCustomerId": _STRING,
    "senderAccountId": _STRING,
    "receiverUserNumber": _STRING,
    "amount": _MONEY,
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
        "/quotes/send": {
            "post": _operation(
                "Price a payment: receiver name, local fee and total",
                "Quote",
                {"403": "SendNotAllowed", "404": "UnknownCustomer or UnknownReceiver"},
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
            "QuoteRequest": _object(list(_QUOTE_FIELDS), **_QUOTE_FIELDS),
            "Quote": _object(
                [*_QUOTE_FIELDS, "receiverName", "fee", "total"],
                **_QUOTE_FIELDS,
                receiverName=_STRING,
                fee=_MONEY,
                total=_MONEY,
            ),
            "TransferRequest": _object(
                [*_QUOTE_FIELDS, "pin", "transferId"],
                **_QUOTE_FIELDS,
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
            "Health": _object(["status"], status=_STRING),
            "OpenApi": {"type": "object"},
        }
    },
}
