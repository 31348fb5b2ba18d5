"""USSD over HTTP (aiohttp), on the gateway's sessions and menu engine.

The endpoint belongs to one DFSP, so any dial string ``*...#`` starts its menu.

- ``POST /ussd``: the reference simulator's JSON ``{"phone", "message", "newSession"}``
  (one session per phone). A dial string, ``"newSession": "true"`` or any message while
  no session is open starts the menu; otherwise the message answers the screen. The
  answer follows the Accept header: the reference ``<UssdResponse>`` XML when XML is
  preferred, ``{"message", "sessionEnd"}`` when JSON is, plain text otherwise.
- ``POST /ussd/callback``: the aggregators' form ``sessionId, serviceCode, phoneNumber,
  text``, where ``text`` is every input so far joined by ``*``; answered ``CON <screen>``
  or ``END <screen>`` in text/plain. A repeated request (no new input) gets the same
  screen again.
- ``POST /notify/sms`` ``{"msisdn", "text"}``: an SMS to the phone (``send_sms``),
  answered ``{"messageId"}``; ``POST /notify/push`` ``{"msisdn", "text"}``: a
  network-initiated USSN screen (``push``, no answer expected), answered
  ``{"status": "sent"}``. Both serve the DFSP's notifications (``dfsp.notifications``)
  and exist only when the app is given a ``Notifier``. 503 ``CarrierUnavailable`` while
  the SMPP link is not bound or the network refuses (the sender retries); 400 for a bad
  MSISDN or a text that does not fit (an SMS of the gateway's segments, one screen).
- ``GET /health``.

Both key the subscriber's remembered language on the phone string as sent (``phone``,
``phoneNumber``): a dialogue starts in the language last chosen from that string.

Errors are ``{"id": "<ErrorName>", "message": "..."}`` (``ussdloop.http``): 400
``BadRequest`` for bad JSON, missing or oversize fields and bodies over the limit; 409
``DialogueInProgress`` while the same session's previous request is still being answered.

The notify routes are for the DFSP's own service on the gateway's listener: put them
behind the same network boundary as the DFSP's API (they take no credentials).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, TypeVar
from xml.sax.saxutils import escape

from aiohttp import web

from gateway.ussd.records import DialogueKey, Screen, SessionState
from gateway.ussd.sessions import SessionManager
from ussdloop.http import (
    BadRequest,
    HttpError,
    error_middleware,
    read_form,
    read_json_object,
    string_field,
)

MAX_BODY: Final = 16 * 1024
MAX_PHONE_CHARS: Final = 64
MAX_SESSION_ID_CHARS: Final = 128
MAX_MESSAGE_CHARS: Final = 1024  # a USSD input is at most 182; the callback's history more
MAX_NOTIFY_TEXT_CHARS: Final = 1024  # an SMS of 6 segments is at most 918 characters
_MSISDN: Final = re.compile(r"\+?([1-9][0-9]{7,14})")  # E.164 digits, "+" optional

T = TypeVar("T")
Health = Callable[[], tuple[str, str]]  # ("green" | "yellow" | "red", reason)

_XML: Final = """<UssdResponse version="1.0">
    <Status code="0"></Status>
    <Message>{message}</Message>
    <DefaultCode>{code}</DefaultCode>
    <PhoneNumber>{phone}</PhoneNumber>
</UssdResponse>
"""
_FORMATS: Final = {
    "application/xml": "xml",
    "text/xml": "xml",
    "application/json": "json",
    "text/plain": "text",
    "text/*": "text",
}


class DialogueInProgress(HttpError):
    """The session's previous input is still being answered."""

    status = 409


class CarrierUnavailable(HttpError):
    """The SMPP link is down or the network refused the message: try again later."""

    status = 503


class _LinkState(Protocol):
    @property
    def bound(self) -> bool: ...


class Notifier(Protocol):
    """What the notify routes need of the gateway (``UssdGateway``)."""

    @property
    def link(self) -> _LinkState: ...

    async def send_sms(self, msisdn: str, text: str, *, receipt: bool = True) -> str: ...

    async def push(self, msisdn: str, text: str, *, expect_reply: bool) -> None: ...


class _Notify:
    """``/notify/sms`` and ``/notify/push``: messages the DFSP sends to its customers."""

    def __init__(self, notifier: Notifier, max_body: int) -> None:
        self._notifier = notifier
        self._max_body = max_body

    async def sms(self, request: web.Request) -> web.Response:
        msisdn, text = await self._message(request)
        message_id = await self._carried(self._notifier.send_sms(msisdn, text))
        return web.json_response({"messageId": message_id})

    async def push(self, request: web.Request) -> web.Response:
        msisdn, text = await self._message(request)
        await self._carried(self._notifier.push(msisdn, text, expect_reply=False))
        return web.json_response({"status": "sent"})

    async def _message(self, request: web.Request) -> tuple[str, str]:
        body = await read_json_object(request, self._max_body)
        match = _MSISDN.fullmatch(string_field(body, "msisdn", MAX_PHONE_CHARS))
        if match is None:
            raise BadRequest("'msisdn' must be an international number of 8 to 15 digits")
        text = string_field(body, "text", MAX_NOTIFY_TEXT_CHARS)
        if not self._notifier.link.bound:
            raise CarrierUnavailable("the carrier link is not bound; try again later")
        return match.group(1), text

    async def _carried(self, sending: Awaitable[T]) -> T:
        from gateway.ussd.service import PushFailed  # (the service module imports this one)

        try:
            return await sending
        except ValueError as error:  # TextCodingError, or more than one screen
            raise BadRequest(str(error)) from None
        except PushFailed as error:
            raise CarrierUnavailable(f"the network did not take it: {error}") from None


def preferred_format(accept: str) -> str:
    """ "xml", "json" or "text": the client's preferred answer (ties: first listed)."""
    best: tuple[tuple[float, int], str] | None = None
    for index, part in enumerate(accept.split(",")):
        media, *params = (item.strip() for item in part.split(";"))
        found = _FORMATS.get(media.lower())
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if found is None or not quality > 0:
            continue
        rank = (quality, -index)
        if best is None or rank > best[0]:
            best = (rank, found)
    return "text" if best is None else best[1]


def is_dial_string(message: str) -> bool:
    return len(message) > 2 and message.startswith("*") and message.endswith("#")


class _UssdOverHttp:
    def __init__(
        self, sessions: SessionManager, default_code: str, max_body: int, health: Health
    ) -> None:
        self._sessions = sessions
        self._default_code = default_code
        self._max_body = max_body
        self._health = health

    async def ussd(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, self._max_body)
        phone = string_field(body, "phone", MAX_PHONE_CHARS)
        message = string_field(body, "message", MAX_MESSAGE_CHARS, allow_empty=True).strip()
        new_session = body.get("newSession") in ("true", True)
        key = DialogueKey(phone, channel="http")
        if new_session or is_dial_string(message) or await self._sessions.load(key) is None:
            code = message if is_dial_string(message) else self._default_code
            screen = await self._sessions.begin(key, code)
        else:
            screen = await self._sessions.answer(key, message)
        reply = _shown(screen).reply
        answer = preferred_format(request.headers.get("Accept", ""))
        if answer == "xml":
            xml = _XML.format(
                message=escape(reply.text), code=escape(self._default_code), phone=escape(phone)
            )
            return web.Response(text=xml, content_type="application/xml")
        if answer == "json":
            return web.json_response({"message": reply.text, "sessionEnd": reply.end})
        return web.Response(text=reply.text, content_type="text/plain")

    async def callback(self, request: web.Request) -> web.Response:
        form = await read_form(request, self._max_body)
        session_id = string_field(form, "sessionId", MAX_SESSION_ID_CHARS)
        phone = string_field(form, "phoneNumber", MAX_PHONE_CHARS)
        text = string_field(form, "text", MAX_MESSAGE_CHARS, allow_empty=True, required=False)
        key = DialogueKey(phone, session_id, channel="callback")
        record = await self._sessions.load(key)
        if record is None and not text:
            screen = await self._sessions.begin(key, self._default_code)
        elif record is None:
            screen = await self._sessions.answer(key, text)  # no session: "Session expired"
        else:
            new_input = _new_input(record.input_history, record.answers, text)
            if new_input is None and record.state is SessionState.AWAITING_SUBSCRIBER:
                return web.Response(text=f"CON {record.last_screen}", content_type="text/plain")
            screen = await self._sessions.answer(key, new_input or "", input_history=text)
        reply = _shown(screen).reply
        prefix = "END" if reply.end else "CON"
        return web.Response(text=f"{prefix} {reply.text}", content_type="text/plain")

    async def health(self, request: web.Request) -> web.Response:
        status, reason = self._health()
        body = {"status": status} if status == "green" else {"status": status, "reason": reason}
        return web.json_response(body, status=200 if status != "red" else 503)


def ussd_http_app(
    sessions: SessionManager,
    *,
    default_code: str,
    max_body: int = MAX_BODY,
    health: Health | None = None,
    metrics: Callable[[], Awaitable[str]] | None = None,
    notifier: Notifier | None = None,
) -> web.Application:
    """The USSD-over-HTTP routes for one DFSP's menu (``default_code`` is its short code),
    with ``/health``, and when given, Prometheus ``/metrics`` and the notify routes."""
    adapter = _UssdOverHttp(sessions, default_code, max_body, health or (lambda: ("green", "")))
    app = web.Application(client_max_size=max_body, middlewares=[error_middleware()])
    app.router.add_post("/ussd", adapter.ussd)
    app.router.add_post("/ussd/callback", adapter.callback)
    app.router.add_get("/health", adapter.health)
    if notifier is not None:
        notify = _Notify(notifier, max_body)
        app.router.add_post("/notify/sms", notify.sms)
        app.router.add_post("/notify/push", notify.push)
    if metrics is not None:
        exposition = metrics

        async def serve_metrics(request: web.Request) -> web.Response:
            return web.Response(
                body=(await exposition()).encode(),
                content_type="text/plain",
                charset="utf-8",
                headers={"X-Prometheus-Format": "0.0.4"},
            )

        app.router.add_get("/metrics", serve_metrics)
    return app


class UssdHttpListener:
    """The app on a TCP port (0: any free one); ``port`` is the real one once started."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
        self.port = None


def _new_input(history: str, answers: int, text: str) -> str | None:
    """What ``text`` (every input so far, ``*``-joined) adds to ``history``; None: nothing.

    An input may itself contain ``*``: the part after the inputs already seen is one input.
    """
    if text == history:
        return None
    if not history and answers == 0:
        return text
    if text.startswith(history + "*"):
        return text[len(history) + 1 :]
    rest = text.split("*")[answers:]  # a history we did not see: count the inputs
    return "*".join(rest) if rest else None


def _shown(screen: Screen | None) -> Screen:
    if screen is None:
        raise DialogueInProgress("the previous input of this session is still being answered")
    return screen
