"""The rules routes (HTTP Basic, any authenticated caller):

- ``GET /transfer?sender_user_number=&receiver_user_number=&amount=`` ->
  ``{"allowed": true}`` or ``{"allowed": false, "reason": {"code", "message"}}`` (codes:
  ``invalid_amount``, ``transfer_limit_exceeded``, ``unknown_receiver``,
  ``fraud_violation``); the reference's shape;
- ``GET /fees?amount=&sender_dfsp=&receiver_dfsp=`` -> ``{"schemeFee": "0.50"}`` (zero
  within one DFSP);
- ``POST /transfers/check`` ``{"sender_user_number", "transfers": [{"receiver_user_number",
  "amount"}, ...]}`` (at most 1000; a bulk payment's rows, the reference's
  ``rule.condition.bulkcheck``) -> ``{"transfers": [...]}``, each as ``GET /transfer``
  answers, with the ``schemeFee`` from the caller to the receiver's DFSP when allowed.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from central.auth import caller, dfsp
from central.errors import ValidationError
from central.participants import NAME
from central.rules.service import Refusal, Rules, TransferCheck
from ussdloop.http import read_json_object, string_field

MAX_BODY: Final = 128 * 1024  # 1000 transfers with room to spare


def _query(request: web.Request, name: str, max_chars: int = 32) -> str:
    value = request.query.get(name)
    if not value or len(value) > max_chars:
        raise ValidationError(f"the query parameter {name!r} is missing or too long")
    return value


class RulesRoutes:
    def __init__(self, rules: Rules) -> None:
        self._rules = rules

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/transfer", self.transfer),
            web.get("/fees", self.fees),
            web.post("/transfers/check", self.check_transfers),
        ]

    async def transfer(self, request: web.Request) -> web.Response:
        caller(request)
        refusal = await self._rules.check_transfer(
            _query(request, "sender_user_number"),
            _query(request, "receiver_user_number"),
            _query(request, "amount"),
        )
        return web.json_response(_refusal_json(refusal))

    async def check_transfers(self, request: web.Request) -> web.Response:
        name = dfsp(request).name  # the fees are from the calling DFSP
        body = await read_json_object(request, MAX_BODY)
        sender = string_field(body, "sender_user_number", 32)
        transfers = body.get("transfers")
        if not isinstance(transfers, list) or not all(isinstance(t, dict) for t in transfers):
            raise ValidationError("'transfers' is a list of objects")
        asked = [
            (string_field(t, "receiver_user_number", 32), string_field(t, "amount", 32))
            for t in transfers
        ]
        checks = await self._rules.check_transfers(sender, name, asked)
        return web.json_response({"transfers": [_check_json(check) for check in checks]})

    async def fees(self, request: web.Request) -> web.Response:
        caller(request)
        dfsps = [_query(request, "sender_dfsp"), _query(request, "receiver_dfsp")]
        if not all(NAME.fullmatch(name) for name in dfsps):
            raise ValidationError("'sender_dfsp' and 'receiver_dfsp' are DFSP names")
        fee = self._rules.scheme_fee(_query(request, "amount"), *dfsps)
        return web.json_response({"schemeFee": str(fee)})


def _refusal_json(refusal: Refusal | None) -> dict[str, Any]:
    if refusal is None:
        return {"allowed": True}
    return {"allowed": False, "reason": {"code": str(refusal.code), "message": refusal.message}}


def _check_json(check: TransferCheck) -> dict[str, Any]:
    answer = _refusal_json(check.refusal)
    if check.scheme_fee is not None:
        answer["schemeFee"] = str(check.scheme_fee)
    return answer
