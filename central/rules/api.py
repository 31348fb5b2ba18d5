"""The rules routes (HTTP Basic, any authenticated caller):

- ``GET /transfer?sender_user_number=&receiver_user_number=&amount=`` ->
  ``{"allowed": true}`` or ``{"allowed": false, "reason": {"code", "message"}}`` (codes:
  ``invalid_amount``, ``transfer_limit_exceeded``, ``unknown_receiver``,
  ``fraud_violation``); the reference's shape;
- ``GET /fees?amount=&sender_dfsp=&receiver_dfsp=`` -> ``{"schemeFee": "0.50"}`` (zero
  within one DFSP).
"""

from __future__ import annotations

from aiohttp import web

from central.auth import caller
from central.errors import ValidationError
from central.participants import NAME
from central.rules.service import Rules


def _query(request: web.Request, name: str, max_chars: int = 32) -> str:
    value = request.query.get(name)
    if not value or len(value) > max_chars:
        raise ValidationError(f"the query parameter {name!r} is missing or too long")
    return value


class RulesRoutes:
    def __init__(self, rules: Rules) -> None:
        self._rules = rules

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/transfer", self.transfer), web.get("/fees", self.fees)]

    async def transfer(self, request: web.Request) -> web.Response:
        caller(request)
        refusal = await self._rules.check_transfer(
            _query(request, "sender_user_number"),
            _query(request, "receiver_user_number"),
            _query(request, "amount"),
        )
        if refusal is None:
            return web.json_response({"allowed": True})
        reason = {"code": str(refusal.code), "message": refusal.message}
        return web.json_response({"allowed": False, "reason": reason})

    async def fees(self, request: web.Request) -> web.Response:
        caller(request)
        dfsps = [_query(request, "sender_dfsp"), _query(request, "receiver_dfsp")]
        if not all(NAME.fullmatch(name) for name in dfsps):
            raise ValidationError("'sender_dfsp' and 'receiver_dfsp' are DFSP names")
        fee = self._rules.scheme_fee(_query(request, "amount"), *dfsps)
        return web.json_response({"schemeFee": str(fee)})
