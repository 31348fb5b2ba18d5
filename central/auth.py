"""Who is calling the central API: HTTP Basic with a DFSP's key and secret, or the
switch operator's credentials (from the configuration).

``authenticate`` is an aiohttp middleware that puts the caller in ``request[CALLER]``
(None for a request without credentials: only the public routes answer those); a
route says whom it serves with ``operator_only(request)`` or ``dfsp(request)``.
Wrong credentials are refused at once (401), whatever the route.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from central.errors import ForbiddenError, UnauthorizedError
from central.participants import Participant, Participants


@dataclass(frozen=True)
class Operator:
    """The switch operator (registers, pauses and caps DFSPs, closes settlements)."""

    key: str


Caller = Operator | Participant
CALLER: web.RequestKey[Caller | None] = web.RequestKey("caller", object)  # type: ignore[arg-type]


def authenticate(participants: Participants, operator_key: str, operator_secret: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CALLER] = await _caller(request, participants, operator_key, operator_secret)
        return await handler(request)

    return middleware


async def _caller(
    request: web.Request, participants: Participants, operator_key: str, operator_secret: str
) -> Caller | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    key, secret = _basic(header)
    operator = hmac.compare_digest(key, operator_key) and hmac.compare_digest(
        secret, operator_secret
    )
    if operator and operator_secret:  # no operator secret configured: no operator login
        return Operator(key)
    participant = await participants.authenticate(key, secret)
    if participant is None:
        raise UnauthorizedError("unknown key or wrong secret")
    return participant


def _basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise UnauthorizedError("use HTTP Basic authentication")
    try:
        key, colon, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError("malformed Basic credentials") from None
    if not colon:
        raise UnauthorizedError("malformed Basic credentials")
    return key, secret


def caller(request: web.Request) -> Caller:
    """The authenticated caller (401 for a request without credentials)."""
    found = request.get(CALLER)
    if found is None:
        raise UnauthorizedError("this route needs credentials (HTTP Basic)")
    return found


def operator_only(request: web.Request) -> Operator:
    found = caller(request)
    if not isinstance(found, Operator):
        raise ForbiddenError("only the switch operator may do this")
    return found


def dfsp(request: web.Request, *, active: bool = True) -> Participant:
    """The calling DFSP; ``active``: refused (403) while it is paused."""
    found = caller(request)
    if not isinstance(found, Participant):
        raise ForbiddenError("only a DFSP may do this")
    if active and not found.active:
        raise ForbiddenError(f"the DFSP {found.name!r} is paused")
    return found


def operator_or_self(request: web.Request, name: str) -> Caller:
    """The operator, or the DFSP ``name`` itself (e.g. reading or pausing itself)."""
    found = caller(request)
    if isinstance(found, Participant) and found.name != name:
        raise ForbiddenError("a DFSP may only act on itself")
    return found
