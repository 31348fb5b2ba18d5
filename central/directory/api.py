"""The directory routes (HTTP Basic; a DFSP unless said):

- ``PUT /directory/endpoint`` ``{"url"}``: the calling DFSP's interledger base URL;
  ``GET /directory/endpoint`` -> ``{"dfsp", "url"}`` (the caller's own, url null if unset);
- ``POST /users`` ``{"name", "userNumber"?}`` -> 201 ``{"userNumber", "name", "dfsp",
  "primary"}``: a new user with a fresh number (the caller is primary), or the caller
  added to an existing user (404 unknown, 409 already there, 403
  ``FraudViolationError`` when the user is blocked);
- ``DELETE /users/{number}/dfsps/{dfsp}``: the caller removes itself from the user
  (the primary last; removing the last DFSP removes the user);
- ``PUT /users/{number}/primary`` ``{"dfsp"}``: only from the current primary;
- ``GET /resources?identifierType=eur&identifier=<number>`` (any caller) ->
  ``{"spspReceiver", "dfsp", "name", "userNumber"}``; 404 ``NotFoundError`` for an
  unknown user or one whose primary DFSP is paused; an unknown identifierType is 404
  ``InvalidQueryParameterError`` (the reference's);
- ``POST /resources/batch`` ``{"identifiers": [...]}`` (at most 1000) ->
  ``{"resources": {number: resource or null}}``;
- ``GET /identifier-types`` (any caller).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from central.auth import caller, dfsp
from central.directory.service import MAX_BATCH, MAX_NAME, MAX_URL, Directory, Resource
from central.errors import ForbiddenError, NotFoundError, ValidationError
from central.participants import NAME
from ussdloop.http import read_json_object, string_field

MAX_BODY: Final = 16 * 1024 * 4  # a batch of 1000 identifiers with room to spare
IDENTIFIER_TYPES: Final = ({"identifierType": "eur", "description": "Central end user registry"},)


class InvalidQueryParameterError(NotFoundError):
    """The reference answers an unregistered identifierType with 404 and this id."""


def resource_json(resource: Resource) -> dict[str, Any]:
    return {
        "spspReceiver": resource.spsp_receiver,
        "dfsp": resource.dfsp,
        "name": resource.name,
        "userNumber": resource.user_number,
    }


class DirectoryRoutes:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put("/directory/endpoint", self.set_endpoint),
            web.get("/directory/endpoint", self.endpoint),
            web.post("/users", self.register_user),
            web.delete("/users/{number}/dfsps/{dfsp}", self.remove_dfsp),
            web.put("/users/{number}/primary", self.set_primary),
            web.get("/resources", self.resource),
            web.post("/resources/batch", self.resources),
            web.get("/identifier-types", self.identifier_types),
        ]

    async def set_endpoint(self, request: web.Request) -> web.Response:
        caller_dfsp = dfsp(request)
        body = await read_json_object(request, MAX_BODY)
        url = await self._directory.set_endpoint(
            caller_dfsp.name, string_field(body, "url", MAX_URL)
        )
        return web.json_response({"dfsp": caller_dfsp.name, "url": url})

    async def endpoint(self, request: web.Request) -> web.Response:
        caller_dfsp = dfsp(request, active=False)
        url = await self._directory.endpoint(caller_dfsp.name)
        return web.json_response({"dfsp": caller_dfsp.name, "url": url})

    async def register_user(self, request: web.Request) -> web.Response:
        caller_dfsp = dfsp(request)
        body = await read_json_object(request, MAX_BODY)
        number = string_field(body, "userNumber", 8, required=False)
        if number:
            registration = await self._directory.add_dfsp(caller_dfsp.name, number)
        else:
            name = string_field(body, "name", MAX_NAME)
            registration = await self._directory.register_user(caller_dfsp.name, name)
        answer = {
            "userNumber": registration.user_number,
            "name": registration.name,
            "dfsp": caller_dfsp.name,
            "primary": registration.primary,
        }
        return web.json_response(answer, status=201)

    async def remove_dfsp(self, request: web.Request) -> web.Response:
        caller_dfsp = dfsp(request)
        if request.match_info["dfsp"] != caller_dfsp.name:
            raise ForbiddenError("a DFSP removes only itself from a user")
        number = request.match_info["number"]
        removed_user = await self._directory.remove_dfsp(caller_dfsp.name, number)
        return web.json_response({"userNumber": number, "userRemoved": removed_user})

    async def set_primary(self, request: web.Request) -> web.Response:
        caller_dfsp = dfsp(request)
        body = await read_json_object(request, MAX_BODY)
        target = string_field(body, "dfsp", 20)
        if not NAME.fullmatch(target):
            raise ValidationError("'dfsp' is a DFSP name")
        number = request.match_info["number"]
        await self._directory.set_primary(caller_dfsp.name, number, target)
        return web.json_response({"userNumber": number, "primaryDfsp": target})

    async def resource(self, request: web.Request) -> web.Response:
        caller(request)
        kind = request.query.get("identifierType", "")
        if kind not in {item["identifierType"] for item in IDENTIFIER_TYPES}:
            raise InvalidQueryParameterError(f"{kind!r} is not a registered identifierType")
        identifier = request.query.get("identifier", "")
        return web.json_response(resource_json(await self._directory.lookup(identifier)))

    async def resources(self, request: web.Request) -> web.Response:
        caller(request)
        body = await read_json_object(request, MAX_BODY)
        identifiers = body.get("identifiers")
        if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
            raise ValidationError("'identifiers' is a list of user numbers")
        if len(identifiers) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} identifiers at once")
        found = await self._directory.lookup_many(identifiers)
        answer = {n: None if r is None else resource_json(r) for n, r in found.items()}
        return web.json_response({"resources": answer})

    async def identifier_types(self, request: web.Request) -> web.Response:
        caller(request)
        return web.json_response(list(IDENTIFIER_TYPES))
