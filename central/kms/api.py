"""The KMS routes (any authenticated caller reads keys; registering follows
``central.kms.service``):

- ``PUT /kms/keys/{service}`` ``{"publicKey": "<base64 raw Ed25519>"}`` -> 200 the
  service's keys; 403 for a service not named after the caller or a key registered by
  someone else; 409 for a key the service had before;
- ``GET /kms/keys/{service}`` -> ``{"service", "current": {"publicKey", "validFrom",
  "owner"}, "previous": [...newest first]}``; 404 when none is registered.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from central.auth import Operator, caller
from central.component import CentralContext, Component
from central.kms.service import OPERATOR, Kms, PublicKey, ServiceKeys
from ussdloop.http import read_json_object, string_field

MAX_BODY: Final = 4 * 1024


def key_json(key: PublicKey) -> dict[str, Any]:
    return {
        "publicKey": key.public_key,
        "validFrom": key.valid_from.isoformat(),
        "owner": key.owner,
    }


def keys_json(keys: ServiceKeys) -> dict[str, Any]:
    return {
        "service": keys.service,
        "current": key_json(keys.current),
        "previous": [key_json(key) for key in keys.previous],
    }


class KmsRoutes:
    def __init__(self, kms: Kms) -> None:
        self._kms = kms

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put("/kms/keys/{service}", self.register),
            web.get("/kms/keys/{service}", self.keys),
        ]

    async def register(self, request: web.Request) -> web.Response:
        who = caller(request)
        body = await read_json_object(request, MAX_BODY)
        public_key = string_field(body, "publicKey", 64)
        name = OPERATOR if isinstance(who, Operator) else who.name
        keys = await self._kms.register(request.match_info["service"], public_key, caller=name)
        return web.json_response(keys_json(keys))

    async def keys(self, request: web.Request) -> web.Response:
        caller(request)
        return web.json_response(keys_json(await self._kms.keys(request.match_info["service"])))


def component(context: CentralContext) -> Component:
    kms = Kms(context.sessions, context.clock)
    return Component("kms", routes=KmsRoutes(kms).routes(), services={"kms": kms})
