"""The forensic log's routes:

- ``POST /forensic/records`` ``{"records": [...]}`` (a DFSP for its own services, the
  operator for the central ones) -> 200 ``{"stored": n}``; 422 with what is wrong for a
  broken chain or a bad signature (the whole batch is refused);
- ``GET /forensic/records?service=&after_seq=&limit=`` and ``GET /forensic/last/{service}``
  (the operator, or the DFSP the service belongs to) -> ``{"records": [...]}`` /
  ``{"record": {...} | null}``;
- ``GET /forensic/verify`` (operator) -> the report of every stored chain
  (``ussdloop.forensic.Report.to_json``);
- ``GET /forensic/transfers/{id}`` (operator) -> ``{"transfer", "records"}``: the
  transfer's path across every service's chain, by time;
- ``GET /forensic/customers/{userNumber}?from=&to=`` (operator; ISO 8601 times, the
  last 30 days by default) -> ``{"userNumber", "from", "to", "transfers", "records"}``:
  every record about one customer in the window, and the transfers among them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web

from central.auth import Operator, caller, operator_only
from central.errors import ForbiddenError, ValidationError
from central.forensic.service import MAX_APPEND, ForensicLog, transfers_in
from central.fraud.service import check_user_number
from central.kms.service import OPERATOR, check_service_name, owner_of
from ussdloop.forensic import MalformedRecord, Record, utc_iso
from ussdloop.http import read_json_object
from ussdloop.times import parse_instant

MAX_BODY: Final = 64 * 1024  # the central app's request limit
DEFAULT_WINDOW: Final = timedelta(days=30)  # of a customer's report


class ForensicRoutes:
    def __init__(self, log: ForensicLog) -> None:
        self._log = log

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/forensic/records", self.append),
            web.get("/forensic/records", self.records),
            web.get("/forensic/last/{service}", self.last),
            web.get("/forensic/verify", self.verify),
            web.get("/forensic/transfers/{id}", self.transfer),
            web.get("/forensic/customers/{number}", self.customer),
        ]

    async def append(self, request: web.Request) -> web.Response:
        name = _caller_name(request)
        items = (await read_json_object(request, MAX_BODY)).get("records")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_APPEND:
            raise ValidationError(f'the body is {{"records": [1 to {MAX_APPEND} records]}}')
        try:
            records = [Record.from_json(item) for item in items]
        except MalformedRecord as error:
            raise ValidationError(str(error)) from None
        return web.json_response({"stored": await self._log.append(records, caller=name)})

    async def records(self, request: web.Request) -> web.Response:
        service = self._readable(request, request.query.get("service", ""))
        after_seq = _int_param(request, "after_seq", 0)
        limit = _int_param(request, "limit", 100)
        records = await self._log.records(service, after_seq=after_seq, limit=limit)
        return web.json_response({"records": [record.to_json() for record in records]})

    async def last(self, request: web.Request) -> web.Response:
        service = self._readable(request, request.match_info["service"])
        last = await self._log.last(service)
        return web.json_response({"record": None if last is None else last.to_json()})

    async def verify(self, request: web.Request) -> web.Response:
        operator_only(request)
        return web.json_response((await self._log.verify()).to_json())

    async def transfer(self, request: web.Request) -> web.Response:
        operator_only(request)
        transfer_id = request.match_info["id"]
        if not 1 <= len(transfer_id) <= 128:
            raise ValidationError("a transfer id is 1 to 128 characters")
        records = await self._log.transfer_path(transfer_id)
        return web.json_response(
            {"transfer": transfer_id, "records": [record.to_json() for record in records]}
        )

    async def customer(self, request: web.Request) -> web.Response:
        operator_only(request)
        number = check_user_number(request.match_info["number"])
        until = _time_param(request, "to") or datetime.now(UTC)
        since = _time_param(request, "from") or until - DEFAULT_WINDOW
        if since >= until:
            raise ValidationError("'from' must be before 'to'")
        records = await self._log.customer_records(number, since, until)
        return web.json_response(
            {
                "userNumber": number,
                "from": utc_iso(since),
                "to": utc_iso(until),
                "transfers": transfers_in(records),
                "records": [record.to_json() for record in records],
            }
        )

    @staticmethod
    def _readable(request: web.Request, service: str) -> str:
        name = _caller_name(request)
        if owner_of(check_service_name(service)) != name and name != OPERATOR:
            raise ForbiddenError("a DFSP reads only its own services' logs")
        return service


def _caller_name(request: web.Request) -> str:
    who = caller(request)
    return OPERATOR if isinstance(who, Operator) else who.name


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise ValidationError(f"{name!r} is an ISO 8601 time, e.g. 2026-11-25T09:00:00Z") from None


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError(f"{name!r} is a whole number")
    return int(raw)
