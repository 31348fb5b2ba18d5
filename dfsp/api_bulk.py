"""The DFSP API's routes for bulk payments (``dfsp.bulk``); ``dfsp.service`` adds them
to ``dfsp.api.dfsp_app`` (whose ``DOMAIN_ERRORS`` middleware answers payments' and
customers' refusals; the bulk ones are answered here).

- ``POST /bulk/batches`` ``{customerId, pin, accountId, csv, endAt?}`` (the maker; at
  most ``MAX_UPLOAD_BYTES``) -> 201 the batch with its validation report.
- ``GET /bulk/batches/{id}`` -> the batch: state, totals, per-row states;
  ``GET /bulk/batches/{id}/report.csv`` -> the per-row report. Both name the acting
  customer and PIN in the ``X-Customer-Id`` and ``X-Pin`` headers (never in the URL).
- ``POST /bulk/batches/{id}/approve`` | ``/reject`` | ``/cancel`` ``{customerId, pin}``
  (``note`` for a rejection).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from dfsp.api import MAX_ID_CHARS, money_json
from dfsp.bulk import MAX_NOTE_CHARS, BatchView, Bulk, RowView
from dfsp.domain.bulk import (
    MAX_CSV_BYTES,
    BatchNotFound,
    BatchStateConflict,
    BulkError,
    BulkRoleMissing,
    InvalidBatchFile,
    InvalidEndDate,
    MakerCannotCheck,
)
from dfsp.domain.pins import MAX_PIN_LENGTH, Pin
from ussdloop.http import BadRequest, read_json_object, string_field
from ussdloop.times import parse_instant

MAX_UPLOAD_BYTES: Final = MAX_CSV_BYTES + MAX_CSV_BYTES // 4 + 4096  # JSON escaping, fields
MAX_SMALL_BODY: Final = 4096
BULK_ERRORS: Final[dict[type[BulkError], int]] = {
    BatchNotFound: 404,
    BulkRoleMissing: 403,
    MakerCannotCheck: 403,
    BatchStateConflict: 409,
    InvalidBatchFile: 400,
    InvalidEndDate: 400,
}


@web.middleware
async def answer_bulk_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BulkError as error:
        status = next((BULK_ERRORS[k] for k in type(error).__mro__ if k in BULK_ERRORS), 400)
        name = type(error).__name__
        return web.json_response({"id": name, "message": str(error) or name}, status=status)


class BulkRoutes:
    def __init__(self, bulk: Bulk) -> None:
        self._bulk = bulk

    def add_to(self, app: web.Application) -> None:
        app.middlewares.append(answer_bulk_errors)
        app.router.add_post("/bulk/batches", self.upload)
        app.router.add_get("/bulk/batches/{batch_id}", self.batch)
        app.router.add_get("/bulk/batches/{batch_id}/report.csv", self.report)
        app.router.add_post("/bulk/batches/{batch_id}/approve", self.approve)
        app.router.add_post("/bulk/batches/{batch_id}/reject", self.reject)
        app.router.add_post("/bulk/batches/{batch_id}/cancel", self.cancel)

    async def upload(self, request: web.Request) -> web.Response:
        body = await _large_json(request, MAX_UPLOAD_BYTES)
        end_text = string_field(body, "endAt", 40, required=False)
        batch = await self._bulk.upload(
            string_field(body, "customerId", MAX_ID_CHARS),
            _pin(body),
            string_field(body, "accountId", MAX_ID_CHARS),
            string_field(body, "csv", MAX_CSV_BYTES),
            end_at=_instant(end_text) if end_text else None,
        )
        return web.json_response(batch_json(batch), status=201)

    async def batch(self, request: web.Request) -> web.Response:
        customer_id, pin = _acting(request)
        view = await self._bulk.batch(request.match_info["batch_id"], customer_id, pin)
        return web.json_response(batch_json(view))

    async def report(self, request: web.Request) -> web.Response:
        customer_id, pin = _acting(request)
        batch_id = request.match_info["batch_id"]
        text = await self._bulk.report_csv(batch_id, customer_id, pin)
        disposition = f'attachment; filename="bulk-{batch_id[:36]}.csv"'
        return web.Response(
            text=text, content_type="text/csv", headers={"Content-Disposition": disposition}
        )

    async def approve(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, MAX_SMALL_BODY)
        batch_id = request.match_info["batch_id"]
        view = await self._bulk.approve(batch_id, _customer(body), _pin(body))
        return web.json_response(batch_json(view))

    async def reject(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, MAX_SMALL_BODY)
        note = string_field(body, "note", MAX_NOTE_CHARS, required=False, allow_empty=True)
        batch_id = request.match_info["batch_id"]
        view = await self._bulk.reject(batch_id, _customer(body), _pin(body), note)
        return web.json_response(batch_json(view))

    async def cancel(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, MAX_SMALL_BODY)
        batch_id = request.match_info["batch_id"]
        view = await self._bulk.cancel(batch_id, _customer(body), _pin(body))
        return web.json_response(batch_json(view))


async def _large_json(request: web.Request, max_body: int) -> dict[str, Any]:
    """A JSON object larger than the app's ``client_max_size``, read from the stream."""
    if request.content_length is not None and request.content_length > max_body:
        raise BadRequest(f"the body is over {max_body} bytes")
    raw = await request.content.read(max_body + 1)
    if len(raw) > max_body or not request.content.at_eof():
        raise BadRequest(f"the body is over {max_body} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _acting(request: web.Request) -> tuple[str, Pin]:
    customer_id = request.headers.get("X-Customer-Id", "")
    pin = request.headers.get("X-Pin", "")
    if not customer_id or len(customer_id) > MAX_ID_CHARS:
        raise BadRequest("name the acting customer in the X-Customer-Id header")
    if not pin or len(pin) > MAX_PIN_LENGTH:
        raise BadRequest("give the acting customer's PIN in the X-Pin header")
    return customer_id, Pin(pin)


def _customer(body: dict[str, Any]) -> str:
    return string_field(body, "customerId", MAX_ID_CHARS)


def _pin(body: dict[str, Any]) -> Pin:
    return Pin(string_field(body, "pin", MAX_PIN_LENGTH))


def _instant(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError:
        raise BadRequest("'endAt' must be an ISO 8601 date and time") from None


def batch_json(batch: BatchView) -> dict[str, Any]:
    totals = batch.totals
    return {
        "batchId": batch.id,
        "state": str(batch.state),
        "makerId": batch.maker_id,
        "checkerId": batch.checker_id,
        "accountId": batch.account_id,
        "endAt": batch.end_at.isoformat(),
        "createdAt": batch.created_at.isoformat(),
        "note": batch.note,
        "totals": {
            "rows": totals.rows,
            "byState": dict(totals.by_state),
            "paid": money_json(totals.paid),
            "fees": money_json(totals.fees),
            "open": money_json(totals.open),
        },
        "rows": [_row_json(row) for row in batch.rows],
    }


def _row_json(row: RowView) -> dict[str, Any]:
    return {
        "line": row.line,
        "sequenceNumber": row.sequence,
        "identifier": row.identifier,
        "firstName": row.first_name,
        "lastName": row.last_name,
        "amount": None if row.amount is None else money_json(row.amount),
        "state": str(row.state),
        "reason": row.reason,
        "transferId": row.transfer_id,
        "fee": None if row.fee is None else money_json(row.fee),
        "paidAt": None if row.paid_at is None else row.paid_at.isoformat(),
        "nextAttemptAt": None if row.next_attempt_at is None else row.next_attempt_at.isoformat(),
    }
