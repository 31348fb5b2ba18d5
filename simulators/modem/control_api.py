"""The simulator's control API: drive virtual handsets and inject faults over HTTP.

For scripts, tests, the web phone (served here: ``GET /``, assets under ``/static/``)
and ``ussdloop phone``. A dial or a reply answers once
the network has the gateway's next screen (or the handset gave up waiting), with that
screen::

    POST /phones/{msisdn}/dial    {"code": "*123#"}       -> the screen
    POST /phones/{msisdn}/reply   {"text": "1"}           -> the screen
    POST /phones/{msisdn}/cancel                          -> the phone
    GET  /phones/{msisdn}                                 -> the phone (its last screen)
    GET  /phones/{msisdn}/sms                             -> the inbox
    GET  /phones                                          -> the network's phones (1000)
    GET  /faults                                          -> the faults in force
    POST /faults                  {"drop_mo": 0.1, ...}   -> the faults in force
    POST /restart                                         -> the network restarted
    GET  /health
    GET  /                                                -> the web phone (static/index.html)

A screen or phone is ``{"msisdn", "screen", "expectsReply", "state", "endedReason",
"networkInitiated"}``; an optional ``"timeout"`` (seconds) in a dial or reply bounds the
wait. Errors are ``{"id": "<ErrorName>", "message": "..."}`` (``ussdloop.http``): 400
``BadRequest`` (and ``InvalidInput``: text one USSD unit cannot carry), 404 ``NotFound``,
409 ``HandsetBusy`` / ``NoDialogue``.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from simulators.modem.faults import MAX_DELAY, Faults
from simulators.modem.handsets import Handset, HandsetError, InvalidInput, Screen, Sms
from simulators.modem.service import Simulator
from ussdloop.http import BadRequest, error_middleware, read_json_object, string_field

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # bytes of one request body
MAX_TEXT = 182  # characters of one USSD string (160 octets of GSM 7-bit)
MAX_WAIT = 300.0  # seconds a dial or reply may ask to wait
MSISDN_DIGITS = range(5, 16)
MAX_LISTED = 1000  # phones in one GET /phones answer (the first by MSISDN; "total" counts all)

STATIC_DIR = Path(__file__).with_name("static")  # the web phone's page, script and style

SIMULATOR_KEY = web.AppKey("simulator", Simulator)


def normalise_msisdn(raw: str) -> str:
    """``"+256 700 000001"`` -> ``"256700000001"``; BadRequest unless 5..15 digits."""
    compact = raw.replace(" ", "")
    digits = compact[1:] if compact.startswith("+") else compact
    if not (digits.isascii() and digits.isdigit() and len(digits) in MSISDN_DIGITS):
        raise BadRequest(f"MSISDN must be 5 to 15 digits with an optional leading +, got {raw!r}")
    return digits


# --- views -----------------------------------------------------------------------------


def screen_view(handset: Handset, screen: Screen | None) -> dict[str, Any]:
    return {
        "msisdn": handset.msisdn,
        "screen": screen.text if screen else None,
        "expectsReply": bool(screen and screen.expects_reply),
        "state": handset.state.value,
        "endedReason": screen.ended_reason if screen else None,
        "networkInitiated": bool(screen and screen.network_initiated),
    }


def idle_view(msisdn: str) -> dict[str, Any]:
    """A phone the network has not met yet: switched on, nothing on its screen."""
    return {
        "msisdn": msisdn,
        "screen": None,
        "expectsReply": False,
        "state": "idle",
        "endedReason": None,
        "networkInitiated": False,
    }


def sms_view(sms: Sms, index: int) -> dict[str, Any]:
    return {
        "index": index,
        "id": sms.id,
        "sender": sms.sender,
        "text": sms.text,
        "receivedAt": _iso_time(sms.received_at),
    }


def _iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


# --- request parsing --------------------------------------------------------------------


def _timeout_field(body: dict[str, Any]) -> float | None:
    value = body.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("'timeout' must be a number of seconds")
    if not (0 < value <= MAX_WAIT and math.isfinite(value)):
        raise BadRequest(f"'timeout' must be between 0 and {MAX_WAIT:g} seconds")
    return float(value)


# --- handlers ---------------------------------------------------------------------------


def _simulator(request: web.Request) -> Simulator:
    return request.app[SIMULATOR_KEY]


def _handset(request: web.Request) -> Handset:
    """The addressed handset; the network creates it the first time it is used."""
    msisdn = normalise_msisdn(request.match_info["msisdn"])
    return _simulator(request).network.handset(msisdn)


async def _dial(request: web.Request) -> web.Response:
    body = await read_json_object(request, MAX_BODY)
    code = string_field(body, "code", MAX_TEXT)
    timeout = _timeout_field(body)
    handset = _handset(request)
    screen = await handset.dial(code, timeout=timeout)
    return web.json_response(screen_view(handset, screen))


async def _reply(request: web.Request) -> web.Response:
    body = await read_json_object(request, MAX_BODY)
    text = string_field(body, "text", MAX_TEXT, allow_empty=True)
    timeout = _timeout_field(body)
    handset = _handset(request)
    screen = await handset.reply(text, timeout=timeout)
    return web.json_response(screen_view(handset, screen))


async def _cancel(request: web.Request) -> web.Response:
    handset = _handset(request)
    await handset.cancel()
    return web.json_response(screen_view(handset, handset.screen))


async def _phone(request: web.Request) -> web.Response:
    msisdn = normalise_msisdn(request.match_info["msisdn"])
    handset = _simulator(request).network.handsets.get(msisdn)
    if handset is None:
        return web.json_response(idle_view(msisdn))
    return web.json_response(screen_view(handset, handset.screen))


async def _inbox(request: web.Request) -> web.Response:
    msisdn = normalise_msisdn(request.match_info["msisdn"])
    handset = _simulator(request).network.handsets.get(msisdn)
    messages = list(handset.sms) if handset is not None else []
    return web.json_response(
        {"msisdn": msisdn, "sms": [sms_view(sms, i) for i, sms in enumerate(messages, 1)]}
    )


async def _phones(request: web.Request) -> web.Response:
    handsets = _simulator(request).network.handsets
    listed = heapq.nsmallest(MAX_LISTED, handsets)
    phones = [screen_view(handsets[msisdn], handsets[msisdn].screen) for msisdn in listed]
    return web.json_response({"phones": phones, "total": len(handsets)})


async def _faults(request: web.Request) -> web.Response:
    body = await read_json_object(request, MAX_BODY, optional=True)
    result = apply_faults(_simulator(request).faults, body)
    log.info("event=simulator_faults %s", json.dumps(result, sort_keys=True))
    return web.json_response(result)


async def _faults_now(request: web.Request) -> web.Response:
    return web.json_response(_simulator(request).faults.snapshot())


async def _restart(request: web.Request) -> web.Response:
    await _simulator(request).restart()
    return web.json_response({"status": "restarted"})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _web_phone(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# --- faults -------------------------------------------------------------------------------

_FRACTIONS = ("drop_mo", "drop_mt", "throttle_fraction")
_FLAGS = ("ignore_enquire_link", "clear", "disconnect")
FAULT_FIELDS = (*_FRACTIONS, "delay", "throttle_count", "seed", *_FLAGS)
MAX_THROTTLE_COUNT = 1_000_000


def apply_faults(faults: Faults, body: dict[str, Any]) -> dict[str, Any]:
    """Change the faults as ``body`` asks; every field is checked before any is applied.

    Settings mirror ``Faults.snapshot()``; ``clear`` turns everything off first, ``seed``
    reseeds the drops, ``disconnect`` drops every ESME connection last. The answer is
    the snapshot after the change (with ``disconnected``: how many, when asked).
    """
    changes = {name: _fault_value(name, value) for name, value in body.items()}
    if "throttle_fraction" in changes and "throttle_count" in changes:
        raise BadRequest("give 'throttle_fraction' or 'throttle_count', not both")
    if changes.get("clear"):
        faults.clear()
    for name in ("drop_mo", "drop_mt", "delay", "ignore_enquire_link"):
        if name in changes:
            setattr(faults, name, changes[name])
    if "throttle_fraction" in changes:
        faults.throttle(float(changes["throttle_fraction"]))
    if "throttle_count" in changes:
        faults.throttle(int(changes["throttle_count"]))
    if "seed" in changes:
        faults.seed(changes["seed"])
    result = faults.snapshot()
    if changes.get("disconnect"):
        result["disconnected"] = faults.disconnect()
    return result


def _fault_value(name: str, value: Any) -> Any:
    if name not in FAULT_FIELDS:
        raise BadRequest(f"unknown fault {name!r}; known: {', '.join(FAULT_FIELDS)}")
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise BadRequest(f"{name!r} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name!r} must be a number")
    if name in _FRACTIONS and not 0 <= value <= 1:
        raise BadRequest(f"{name!r} must be a fraction between 0 and 1")
    if name == "delay" and not 0 <= value <= MAX_DELAY:
        raise BadRequest(f"'delay' must be between 0 and {MAX_DELAY:g} seconds")
    if name in ("throttle_count", "seed") and not isinstance(value, int):
        raise BadRequest(f"{name!r} must be a whole number")
    if name == "throttle_count" and not 0 <= value <= MAX_THROTTLE_COUNT:
        raise BadRequest(f"'throttle_count' must be between 0 and {MAX_THROTTLE_COUNT}")
    return value


# --- errors -------------------------------------------------------------------------------

# The handsets' refusals, by status (the id is the error's class name).
_HANDSET_ERRORS: dict[type[Exception], int] = {InvalidInput: 400, HandsetError: 409}


def control_app(simulator: Simulator) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware(_HANDSET_ERRORS)])
    app[SIMULATOR_KEY] = simulator
    app.router.add_get("/health", _health)
    app.router.add_get("/phones", _phones)
    app.router.add_get("/phones/{msisdn}", _phone)
    app.router.add_get("/phones/{msisdn}/sms", _inbox)
    app.router.add_post("/phones/{msisdn}/dial", _dial)
    app.router.add_post("/phones/{msisdn}/reply", _reply)
    app.router.add_post("/phones/{msisdn}/cancel", _cancel)
    app.router.add_get("/faults", _faults_now)
    app.router.add_post("/faults", _faults)
    app.router.add_post("/restart", _restart)
    app.router.add_get("/", _web_phone)
    app.router.add_static("/static/", STATIC_DIR)
    return app


class ControlServer:
    """The control API on a real listening socket (``port`` 0 takes a free one)."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 8000) -> None:
        self._simulator = simulator
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        runner = web.AppRunner(control_app(self._simulator), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("control_api.listening host=%s port=%d", self._host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
