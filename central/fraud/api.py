"""The fraud routes (HTTP Basic; answers are the user's standing, see ``standing_json``):

- ``POST /fraud/reports`` (a DFSP) ``{"userNumber", "score": 0-100, "reason"}`` -> 201;
- ``PUT /fraud/blacklist/{number}`` and ``DELETE /fraud/blacklist/{number}`` (a DFSP or
  the operator) ``{"reason"}``: the reason is required both ways, and kept with who
  changed it and when;
- ``GET /fraud/users/{number}`` (any authenticated caller);
- ``POST /fraud/users/lookup`` (any authenticated caller) ``{"numbers": [1 to 100 user
  numbers]}`` -> ``{"users": [...]}``: each number's standing, in order, as the GET
  answers it (one never reported is clean).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from central.auth import Operator, caller, dfsp
from central.errors import ValidationError
from central.fraud.service import MAX_REASON, Fraud, FraudStanding, check_user_number
from ussdloop.http import read_json_object, string_field

MAX_BODY: Final = 4 * 1024


def standing_json(standing: FraudStanding) -> dict[str, Any]:
    return {
        "userNumber": standing.user_number,
        "score": standing.score,
        "blacklisted": standing.blacklisted,
        "reason": standing.reason,
        "changedBy": standing.changed_by,
        "changedAt": None if standing.changed_at is None else standing.changed_at.isoformat(),
        "reports": [
            {
                "dfsp": report.dfsp,
                "score": report.score,
                "reason": report.reason,
                "reported": report.reported_at.isoformat(),
            }
            for report in standing.reports
        ],
    }


class FraudRoutes:
    def __init__(self, fraud: Fraud) -> None:
        self._fraud = fraud

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/fraud/reports", self.report),
            web.put("/fraud/blacklist/{number}", self.blacklist),
            web.delete("/fraud/blacklist/{number}", self.unblacklist),
            web.get("/fraud/users/{number}", self.user),
            web.post("/fraud/users/lookup", self.users),
        ]

    async def report(self, request: web.Request) -> web.Response:
        reporter = dfsp(request)
        body = await read_json_object(request, MAX_BODY)
        score = body.get("score")
        if isinstance(score, bool) or not isinstance(score, int):
            raise ValidationError("'score' is a whole number from 0 to 100")
        standing = await self._fraud.report(
            reporter.name,
            string_field(body, "userNumber", 8),
            score,
            string_field(body, "reason", MAX_REASON),
        )
        return web.json_response(standing_json(standing), status=201)

    async def blacklist(self, request: web.Request) -> web.Response:
        number, reason, by = await self._blacklist_change(request)
        return web.json_response(standing_json(await self._fraud.blacklist(number, reason, by)))

    async def unblacklist(self, request: web.Request) -> web.Response:
        number, reason, by = await self._blacklist_change(request)
        answer = await self._fraud.unblacklist(number, reason, by)
        return web.json_response(standing_json(answer))

    async def user(self, request: web.Request) -> web.Response:
        caller(request)
        standing = await self._fraud.standing(check_user_number(request.match_info["number"]))
        return web.json_response(standing_json(standing))

    async def users(self, request: web.Request) -> web.Response:
        caller(request)
        numbers = (await read_json_object(request, MAX_BODY)).get("numbers")
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise ValidationError("'numbers' is a list of user numbers")
        standings = await self._fraud.lookup(numbers)
        return web.json_response({"users": [standing_json(s) for s in standings]})

    async def _blacklist_change(self, request: web.Request) -> tuple[str, str, str]:
        who = caller(request)
        by = f"operator:{who.key}" if isinstance(who, Operator) else dfsp(request).name
        number = check_user_number(request.match_info["number"])
        body = await read_json_object(request, MAX_BODY)
        return number, string_field(body, "reason", MAX_REASON), by
