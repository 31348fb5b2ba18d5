"""The central ledger's routes (five-bells style, SPEC section 4):

- ``PUT /transfers/{id}`` (the payer DFSP) prepare -> 201 the transfer, or 200 for the
  same request again; other content for a taken id -> 409 ``AlreadyExistsError``;
- ``POST /transfers/batch`` ``{"transfers": [<a prepare's body, with its "id">, ...]}``
  (the payer DFSP; at most 100, a bulk payment's, in one transaction) -> 200
  ``{"transfers": [...]}``: each the transfer with ``"created"``, or ``{"id", "error":
  {"id", "message", "status"}}`` for one refused as its ``PUT`` would be;
- ``PUT /transfers/{id}/fulfillment`` (``text/plain``: the fulfilment, crypto-conditions
  ``oCKAI...`` form or the raw 32-byte preimage in base64url; a DFSP of the transfer)
  -> 200 the transfer, executed;
- ``POST /transfers/fulfillments`` ``{"fulfillments": [{"id", "fulfillment": <the
  text of a PUT fulfillment>}, ...]}`` (a DFSP of the transfers; at most 100, in one
  transaction) -> 200 ``{"transfers": [...]}``: each the transfer, or ``{"id", "error":
  {...}}`` for one refused as its ``PUT`` would be;
- ``GET /transfers/{id}/fulfillment`` -> ``text/plain`` (404 until executed);
- ``PUT /transfers/{id}/rejection`` (``text/plain`` reason; a DFSP of the transfer)
  -> 200 the transfer, rejected;
- ``GET /transfers/{id}`` (a DFSP of the transfer, or the operator);
- ``GET /positions`` (operator), ``GET /positions/{dfsp}`` (operator or that DFSP);
- ``POST /settlements`` (operator) -> 201, ``GET /settlements/{id}`` (operator);
- ``GET /notifications?after=<seq>&limit=<n>`` (a DFSP: its own, in order, at most
  500), ``GET /notifications/ws`` (a DFSP: WebSocket of its notifications).

Refusals: ``ValidationError`` 400 (malformed; a batch with a malformed item or an id
twice is refused whole), ``InvalidUriParameterError`` 400 (the id is not a UUID),
``ForbiddenError`` 403, ``NotFoundError`` 404, ``AlreadyExistsError`` 409,
``UnprocessableEntityError`` 422 (expired, wrong fulfilment, sums, unknown or paused
payee...), ``UnsupportedCryptoTypeError`` 422, ``NetDebitCapExceededError`` 422.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from central.auth import Operator, caller, dfsp, operator_only, operator_or_self
from central.errors import NotFoundError, UnprocessableEntityError, ValidationError
from central.ledger.domain import checked_transfer_id, reason_text
from central.ledger.notifications import Sockets
from central.ledger.service import CentralLedger, PositionTotals
from central.ledger.wire import fulfilment_text, parse_fulfilment, parse_prepare, transfer_json
from ussdloop.http import HttpError, read_json_object
from ussdloop.money import Money

MAX_BODY: Final = 64 * 1024
MAX_PREPARES: Final = 100  # in one batch
MAX_BATCH_BODY: Final = MAX_PREPARES * 4 * 1024
MAX_FULFILMENTS: Final = 100  # in one batch
MAX_FULFILMENTS_BODY: Final = MAX_FULFILMENTS * 256  # an id and a fulfilment: ~150 bytes
MAX_TEXT: Final = 4096


class LedgerRoutes:
    def __init__(self, ledger: CentralLedger, sockets: Sockets, currency: str) -> None:
        self._ledger = ledger
        self._sockets = sockets
        self._currency = currency

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put("/transfers/{id}", self.prepare),
            web.post("/transfers/batch", self.prepare_many),
            web.post("/transfers/fulfillments", self.fulfil_many),
            web.get("/transfers/{id}", self.transfer),
            web.put("/transfers/{id}/fulfillment", self.fulfil),
            web.get("/transfers/{id}/fulfillment", self.fulfilment),
            web.put("/transfers/{id}/rejection", self.reject),
            web.get("/positions", self.positions),
            web.get("/positions/{dfsp}", self.position),
            web.post("/settlements", self.settle),
            web.get("/settlements/{id}", self.settlement),
            web.get("/notifications", self.notifications),
            web.get("/notifications/ws", self.socket),
        ]

    async def prepare(self, request: web.Request) -> web.Response:
        payer = dfsp(request)
        transfer_id = checked_transfer_id(request.match_info["id"])
        body = await read_json_object(request, MAX_BODY)
        prepare = parse_prepare(body, transfer_id, self._currency)
        row, created = await self._ledger.prepare(payer.name, prepare)
        return self._transfer(row, 201 if created else 200)

    async def prepare_many(self, request: web.Request) -> web.Response:
        payer = dfsp(request)
        body = await read_json_object(request, MAX_BATCH_BODY)
        items = _batch(body, "transfers")
        if not 0 < len(items) <= MAX_PREPARES:
            raise ValidationError(f"'transfers' holds 1 to {MAX_PREPARES} prepares")
        prepares = [
            parse_prepare(item, checked_transfer_id(str(item.get("id", ""))), self._currency)
            for item in items
        ]
        outcomes = await self._ledger.prepare_many(payer.name, prepares)
        answers = [
            _refused_json(prepare.id, outcome)
            if isinstance(outcome, HttpError)
            else transfer_json(outcome[0], self._currency) | {"created": outcome[1]}
            for prepare, outcome in zip(prepares, outcomes, strict=True)
        ]
        return web.json_response({"transfers": answers})

    async def transfer(self, request: web.Request) -> web.Response:
        transfer_id = checked_transfer_id(request.match_info["id"])
        return self._transfer(await self._ledger.get(_party(request), transfer_id))

    async def fulfil(self, request: web.Request) -> web.Response:
        who = dfsp(request, active=False)
        transfer_id = checked_transfer_id(request.match_info["id"])
        preimage = parse_fulfilment(await _text(request))
        return self._transfer(await self._ledger.fulfil(who.name, transfer_id, preimage))

    async def fulfil_many(self, request: web.Request) -> web.Response:
        who = dfsp(request, active=False)
        items = _batch(await read_json_object(request, MAX_FULFILMENTS_BODY), "fulfillments")
        if not 0 < len(items) <= MAX_FULFILMENTS:
            raise ValidationError(f"'fulfillments' holds 1 to {MAX_FULFILMENTS} fulfilments")
        fulfilments = [_fulfilment_of(item) for item in items]
        outcomes = await self._ledger.fulfil_many(who.name, fulfilments)
        answers = [
            _refused_json(transfer_id, outcome)
            if isinstance(outcome, HttpError)
            else transfer_json(outcome, self._currency)
            for (transfer_id, _), outcome in zip(fulfilments, outcomes, strict=True)
        ]
        return web.json_response({"transfers": answers})

    async def fulfilment(self, request: web.Request) -> web.Response:
        transfer_id = checked_transfer_id(request.match_info["id"])
        row = await self._ledger.get(_party(request), transfer_id)
        if row.fulfilment is None:
            raise NotFoundError(f"the transfer {transfer_id} is {row.state}, not executed")
        return web.Response(text=fulfilment_text(row.fulfilment), content_type="text/plain")

    async def reject(self, request: web.Request) -> web.Response:
        who = dfsp(request, active=False)
        transfer_id = checked_transfer_id(request.match_info["id"])
        reason = reason_text(await _text(request))
        return self._transfer(await self._ledger.reject(who.name, transfer_id, reason))

    async def positions(self, request: web.Request) -> web.Response:
        operator_only(request)
        every = await self._ledger.positions()
        return web.json_response({"positions": [self._position(p) for p in every]})

    async def position(self, request: web.Request) -> web.Response:
        name = request.match_info["dfsp"]
        operator_or_self(request, name)
        return web.json_response(self._position(await self._ledger.position(name)))

    async def settle(self, request: web.Request) -> web.Response:
        operator_only(request)
        return web.json_response(self._settlement(await self._ledger.settle()), status=201)

    async def settlement(self, request: web.Request) -> web.Response:
        operator_only(request)
        settlement_id = checked_transfer_id(request.match_info["id"])
        return web.json_response(self._settlement(await self._ledger.settlement(settlement_id)))

    async def notifications(self, request: web.Request) -> web.Response:
        who = dfsp(request, active=False)
        after = _int_parameter(request, "after", 0)
        limit = _int_parameter(request, "limit", 100)
        found = await self._ledger.notifications_after(who.name, after, limit)
        return web.json_response({"notifications": [{"id": s, **body} for s, body in found]})

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        who = dfsp(request, active=False)
        after = _int_parameter(request, "after", -1)
        start = None if after < 0 else after
        return await self._sockets.serve(request, self._ledger, who.name, start)

    def _transfer(self, row: Any, status: int = 200) -> web.Response:
        return web.json_response(transfer_json(row, self._currency), status=status)

    def _position(self, position: PositionTotals) -> dict[str, str]:
        return {
            "account": position.account,
            "payments": str(Money(self._currency, position.payments_minor)),
            "receipts": str(Money(self._currency, position.receipts_minor)),
            "net": str(Money(self._currency, position.net_minor)),
        }

    def _settlement(self, settlement: Any) -> dict[str, Any]:
        return {
            "id": settlement.id,
            "transfers": settlement.transfers,
            "settled_at": settlement.settled_at.isoformat().replace("+00:00", "Z"),
            "positions": [
                {"account": account, "net": str(Money(self._currency, net))}
                for account, net in settlement.nets_minor
            ],
        }


def _party(request: web.Request) -> str | None:
    """The calling DFSP's name, or None for the operator (who may read any transfer)."""
    found = caller(request)
    return None if isinstance(found, Operator) else found.name


async def _text(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_TEXT:
        raise ValidationError(f"the body is over {MAX_TEXT} bytes")
    raw = await request.content.read(MAX_TEXT + 1)
    if len(raw) > MAX_TEXT:
        raise ValidationError(f"the body is over {MAX_TEXT} bytes")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ValidationError("the body is UTF-8 text") from None


def _int_parameter(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 18:
        raise ValidationError(f"{name!r} is a whole number")
    return int(value)


def _batch(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValidationError(f"{key!r} is a list of objects")
    return items


def _fulfilment_of(item: dict[str, Any]) -> tuple[str, bytes]:
    """A batch item's transfer id and preimage; a bad one refuses the whole batch (400)."""
    transfer_id = checked_transfer_id(str(item.get("id", "")))
    text = item.get("fulfillment")
    try:
        preimage = parse_fulfilment(text) if isinstance(text, str) else None
    except (ValidationError, UnprocessableEntityError):
        preimage = None
    if preimage is None:
        raise ValidationError(
            f"the fulfillment of {transfer_id} is not a fulfilment (crypto-conditions form "
            "or a 32-byte preimage, base64url)"
        )
    return transfer_id, preimage


def _refused_json(transfer_id: str, refusal: HttpError) -> dict[str, Any]:
    error = {"id": refusal.error_id, "message": str(refusal), "status": refusal.status}
    return {"id": transfer_id, "error": error}
