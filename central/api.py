"""The central services' HTTP API: one aiohttp app for every component.

Shared: errors as ``{"id", "message"}`` in the reference's names (``central.errors``),
HTTP Basic authentication (``central.auth``), ``GET /`` metadata and ``GET /health``.
The participants' routes are here:

- ``POST /commands/register`` (operator) ``{"name", "netDebitCap"?}`` -> 201
  ``{"name", "key", "secret"}``: the credentials, shown this once; a taken name is 409
  ``AlreadyExistsError``;
- ``GET /participants`` (operator), ``GET /participants/{name}`` (operator or itself);
- ``POST /participants/{name}/pause`` and ``/unpause`` (operator or itself): pausing
  runs every component's pause hook (its users look unknown, its pending transfers are
  cancelled);
- ``PUT /participants/{name}/net-debit-cap`` (operator) ``{"netDebitCap": "1000.00"}``
  or ``null`` for none.

Each change is written to central's forensic chain (subject = the DFSP's name, data
says who did it): ``participant.registered``, ``participant.paused``,
``participant.unpaused``, ``participant.cap_changed`` (best effort, after the change).

Each component adds its own routes (``central.component``); the switch operator's web
console is under ``/console/`` (``central.console``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from aiohttp import web

from central.auth import Operator, authenticate, caller, operator_only, operator_or_self
from central.component import CentralContext, Component
from central.console import console_routes
from central.errors import ValidationError
from central.participants import NAME, Participant, Status
from ussdloop.forensic import ForensicUnavailable
from ussdloop.http import error_middleware, read_json_object, string_field
from ussdloop.money import Money, MoneyError

MAX_BODY: Final = 64 * 1024

log = logging.getLogger(__name__)


def participant_json(participant: Participant, currency: str) -> dict[str, Any]:
    cap = participant.net_debit_cap_minor
    return {
        "name": participant.name,
        "status": str(participant.status),
        "netDebitCap": None if cap is None else str(Money(currency, cap)),
        "created": participant.created_at.isoformat(),
    }


class _ParticipantRoutes:
    def __init__(self, context: CentralContext, components: Sequence[Component]) -> None:
        self._context = context
        self._components = components
        self._currency = context.settings.currency

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.metadata),
            web.get("/health", self.health),
            web.post("/commands/register", self.register),
            web.get("/participants", self.all),
            web.get("/participants/{name}", self.one),
            web.post("/participants/{name}/pause", self.pause),
            web.post("/participants/{name}/unpause", self.unpause),
            web.put("/participants/{name}/net-debit-cap", self.net_debit_cap),
        ]

    async def metadata(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "ussdloop central",
                "currency": self._currency,
                "components": [component.name for component in self._components],
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "OK"})

    async def register(self, request: web.Request) -> web.Response:
        operator_only(request)
        body = await read_json_object(request, MAX_BODY)
        name = string_field(body, "name", 20)
        cap = self._cap(body, required=False)
        credentials = await self._context.participants.register(name, net_debit_cap_minor=cap)
        answer = {"name": credentials.name, "key": credentials.key, "secret": credentials.secret}
        participant = await self._context.participants.get(credentials.name)
        await self._log(request, "participant.registered", participant)
        return web.json_response(answer, status=201)

    async def all(self, request: web.Request) -> web.Response:
        operator_only(request)
        everyone = await self._context.participants.all()
        return web.json_response(
            {"participants": [participant_json(p, self._currency) for p in everyone]}
        )

    async def one(self, request: web.Request) -> web.Response:
        name = self._name(request)
        operator_or_self(request, name)
        participant = await self._context.participants.get(name)
        return web.json_response(participant_json(participant, self._currency))

    async def pause(self, request: web.Request) -> web.Response:
        return await self._set_status(request, Status.PAUSED)

    async def unpause(self, request: web.Request) -> web.Response:
        return await self._set_status(request, Status.ACTIVE)

    async def net_debit_cap(self, request: web.Request) -> web.Response:
        operator_only(request)
        name = self._name(request)
        cap = self._cap(await read_json_object(request, MAX_BODY), required=True)
        participant = await self._context.participants.set_net_debit_cap(name, cap)
        await self._log(request, "participant.cap_changed", participant)
        return web.json_response(participant_json(participant, self._currency))

    async def _set_status(self, request: web.Request, status: Status) -> web.Response:
        name = self._name(request)
        operator_or_self(request, name)
        participant = await set_participant_status(
            self._context, self._components, name, status, by=_who(request)
        )
        return web.json_response(participant_json(participant, self._currency))

    async def _log(self, request: web.Request, event: str, participant: Participant) -> None:
        await log_participant_change(self._context, event, participant, by=_who(request))

    def _cap(self, body: dict[str, Any], *, required: bool) -> int | None:
        if "netDebitCap" not in body:
            if required:
                raise ValidationError("'netDebitCap' is missing (null for no cap)")
            return None
        value = body["netDebitCap"]
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError("'netDebitCap' is a decimal string such as \"1000.00\"")
        try:
            cap = Money.parse(value, self._currency)
        except MoneyError as error:
            raise ValidationError(f"'netDebitCap': {error}") from None
        if cap.minor < 0:
            raise ValidationError("'netDebitCap' is not negative")
        return cap.minor

    @staticmethod
    def _name(request: web.Request) -> str:
        name = request.match_info["name"]
        if not NAME.fullmatch(name):
            raise ValidationError("a DFSP name is 1 to 20 of A-Z a-z 0-9 _ ~ -")
        return name


def _who(request: web.Request) -> str:
    who = caller(request)
    return "operator" if isinstance(who, Operator) else who.name


async def set_participant_status(
    context: CentralContext,
    components: Sequence[Component],
    name: str,
    status: Status,
    *,
    by: str,
) -> Participant:
    """Pause or unpause ``name``, logged; pausing runs every component's pause hook
    (the API's routes and the operator's console both come here)."""
    participant = await context.participants.set_status(name, status)
    event = "participant.paused" if status is Status.PAUSED else "participant.unpaused"
    await log_participant_change(context, event, participant, by=by)
    if status is Status.PAUSED:
        for component in components:
            if component.on_pause is not None:
                await component.on_pause(name)
    return participant


async def log_participant_change(
    context: CentralContext, event: str, participant: Participant, *, by: str
) -> None:
    """Best effort: the change is made; a failure is logged (and leaves central's
    chain unavailable, so the ledger refuses new transfers until it is back)."""
    data = participant_json(participant, context.settings.currency) | {"by": by}
    try:
        await context.forensic.write(event, participant.name, data)
    except ForensicUnavailable:
        log.warning("event=forensic_write_failed record=%s dfsp=%s", event, participant.name)


def central_app(context: CentralContext, components: Sequence[Component]) -> web.Application:
    settings = context.settings
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            error_middleware(),
            authenticate(context.participants, settings.operator_key, settings.operator_secret),
        ],
    )
    app.router.add_routes(_ParticipantRoutes(context, components).routes())
    # The switch operator's web console (``/console/``), with its own sessions.
    app.router.add_routes(
        console_routes(context, components, set_participant_status, log_participant_change)
    )
    for component in components:
        app.router.add_routes(component.routes)
        if component.closing is not None:
            app.on_shutdown.append(_closing(component.closing))
    return app


def _closing(hook: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def on_shutdown(app: web.Application) -> None:
        await hook()

    return on_shutdown
