"""The USSD gateway: the carrier's SMPP link, its dialect, the sessions and the menu.

``UssdGateway.on_deliver`` is the link's synchronous callback for every deliver_sm /
data_sm: it classifies the PDU (delivery receipt, malformed, or a USSD unit), answers
its command_status at once and runs the dialogue turn as an asyncio task, whose screen
goes back as a submit_sm. The same sessions and menu also serve USSD over HTTP
(``gateway.ussd.http``) on the gateway's own listener.

Network-initiated traffic: ``push`` sends a USSR request (a screen expecting an answer,
which opens a session) or a USSN request (a notification); ``send_sms`` sends an SMS
with a delivery receipt requested, and receipts are kept (bounded) by message id
(``gateway.ussd.sms``).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol, cast

from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.smpp.constants import ESM_CLASS_DELIVERY_RECEIPT, CommandStatus, status_name
from gateway.smpp.dialects import (
    DIALECTS,
    Dialect,
    DialectError,
    SessionKey,
    UssdAction,
    UssdMessage,
    build_mobile_terminated,
    parse_mobile_originated,
)
from gateway.smpp.esme import EsmeClient, EsmeConfig, EsmeError
from gateway.smpp.gsm0338 import ScreenLimits, fits_screen
from gateway.smpp.pdu import Pdu
from gateway.smpp.tlv import TlvValueError
from gateway.ussd.http import UssdHttpListener, ussd_http_app
from gateway.ussd.records import DialogueKey, Screen, SessionTimers, UssdCounters
from gateway.ussd.sessions import MENU_HANDLER, Clock, SessionManager, SessionOpen
from gateway.ussd.sms import DeliveryReceipt, SmsOutbox
from gateway.ussd.stores import MemorySessionStore, SessionStore
from gateway.ussd_menus.engine import MenuEngine, mask_msisdn
from ussdloop.metrics import Metric, counters, render

PUSH_ID_ATTEMPTS: Final = 8  # carrier session ids tried for a push before giving up
_SESSION_ID_LIMITS: Final = {
    SessionKey.ITS_SESSION_INFO: 0xFF,  # one octet
    SessionKey.USER_MESSAGE_REFERENCE: 0xFFFF,  # two octets
}
_SHORT_CODE: Final = re.compile(r"\*[0-9]+(\*[0-9]+)*#")

_log = Logger(namespace="gateway.ussd.service")


class CarrierLink(Protocol):
    """What the gateway needs of its SMPP link (``EsmeClient``, or a test's fake)."""

    @property
    def bound(self) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, pdu: Pdu) -> Pdu: ...


class PushFailed(RuntimeError):
    """The network did not accept a pushed screen or an SMS; ``status`` says why."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class GatewayConfig:
    esme: EsmeConfig
    dialect: str = "standard"  # a name in gateway.smpp.dialects.DIALECTS
    short_codes: tuple[str, ...] = ("*123#",)  # the first one is used for pushes and HTTP
    max_sessions: int = 100_000
    http_host: str = "127.0.0.1"
    http_port: int | None = 0  # 0: any free port; None: no USSD-over-HTTP listener
    http_max_body: int = 16 * 1024
    sms_source: str = ""  # source_addr of SMS; "" = the first short code's digits
    receipts_kept: int = 10_000
    max_turns_in_flight: int = 10_000  # MO units being handled; beyond: ESME_RMSGQFUL
    timers: SessionTimers | None = None  # None: the dialect's (180 s / 30 s / 15 s)

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(
                f"GatewayConfig.dialect: unknown dialect {self.dialect!r}"
                f" (known: {', '.join(sorted(DIALECTS))})"
            )
        if not self.short_codes:
            raise ValueError("GatewayConfig.short_codes: at least one short code is needed")
        for code in self.short_codes:
            if not _SHORT_CODE.fullmatch(code):
                raise ValueError(f"GatewayConfig.short_codes: {code!r} is not like *123#")
        if self.max_sessions <= 0:
            raise ValueError("GatewayConfig.max_sessions must be positive")
        if self.http_port is not None and not 0 <= self.http_port < 65536:
            raise ValueError(f"GatewayConfig.http_port: {self.http_port} is not a TCP port")
        if self.http_max_body < 1024:
            raise ValueError("GatewayConfig.http_max_body must be at least 1024 bytes")
        if self.receipts_kept < 0:
            raise ValueError("GatewayConfig.receipts_kept must not be negative")
        if self.max_turns_in_flight <= 0:
            raise ValueError("GatewayConfig.max_turns_in_flight must be positive")

    @property
    def carrier_dialect(self) -> Dialect:
        return DIALECTS[self.dialect]

    @property
    def default_code(self) -> str:
        return self.short_codes[0]


class UssdGateway:
    def __init__(
        self,
        config: GatewayConfig,
        menu_engine: MenuEngine,
        *,
        reactor: Clock | None = None,
        store: SessionStore | None = None,
        link: CarrierLink | None = None,
    ) -> None:
        reactor = reactor if reactor is not None else _global_reactor()
        self.config = config
        self.dialect = config.carrier_dialect
        if not _fits_within(menu_engine.limits, self.dialect.limits):
            raise ValueError(
                f"the menu engine's screen limits {menu_engine.limits} exceed dialect"
                f" {self.dialect.name!r}'s {self.dialect.limits}"
            )
        self.counters = UssdCounters()
        self._reactor = reactor
        self._owns_store = store is None
        self.store: SessionStore = store or MemorySessionStore(reactor.seconds)
        self.sessions = SessionManager(
            self.store,
            menu_engine,
            clock=reactor,
            timers=config.timers
            or SessionTimers(
                self.dialect.dialogue_timeout,
                self.dialect.screen_timeout,
                self.dialect.application_timeout,
            ),
            max_sessions=config.max_sessions,
            counters=self.counters,
        )
        self.link: CarrierLink = link or EsmeClient(config.esme, self.on_deliver, reactor=reactor)
        self.sms = SmsOutbox(
            self._submit,
            source_addr=config.sms_source or _root(config.default_code),
            kept=config.receipts_kept,
            counters=self.counters,
        )
        self._roots = frozenset(_root(code) for code in config.short_codes)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._next_push_id = random.randrange(_SESSION_ID_LIMITS.get(self.dialect.session_key, 1))
        self._http: UssdHttpListener | None = None

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the USSD-over-HTTP listener and start binding the SMPP link."""
        if self.config.http_port is not None:
            app = ussd_http_app(
                self.sessions,
                default_code=self.config.default_code,
                max_body=self.config.http_max_body,
                health=self._health,
                metrics=self.metrics_text,
                notifier=self,
            )
            self._http = UssdHttpListener(app, self.config.http_host, self.config.http_port)
            await self._http.start()
        self.link.start()
        _log.info(
            "ussd_gateway_started dialect={dialect} short_codes={short_codes} http_port={port}",
            dialect=self.dialect.name,
            short_codes=",".join(self.config.short_codes),
            port=self.http_port,
        )

    async def stop(self) -> None:
        """Close the HTTP listener, unbind the link, then end the work under way."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        await self.link.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.settle()
        await self.sessions.close()
        if self._owns_store:
            await self.store.close()

    async def settle(self) -> None:
        """Wait until every PDU taken so far has been handled (its screen submitted)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.sessions.settle()

    @property
    def receipts(self) -> OrderedDict[str, DeliveryReceipt]:
        """The last ``receipts_kept`` delivery receipts, by message id (oldest first)."""
        return self.sms.receipts

    @property
    def http_port(self) -> int | None:
        """The port the USSD-over-HTTP listener is on (None when not listening)."""
        return None if self._http is None else self._http.port

    async def metrics_text(self) -> str:
        """Prometheus exposition of the gateway's counters, link and live sessions."""
        link_stats = getattr(self.link, "stats", None)
        figures = [
            *counters("ussd", self.counters.as_dict(), "USSD gateway events"),
            Metric("ussd_sessions_live", "gauge", "live USSD sessions", await self.store.count()),
            Metric("smpp_bound", "gauge", "1 when the SMPP link is bound", int(self.link.bound)),
        ]
        if link_stats is not None:
            events = asdict(link_stats)
            peak = events.pop("max_in_flight", 0)
            figures += counters("smpp", events, "SMPP link events")
            figures.append(Metric("smpp_window_peak", "gauge", "most requests in flight", peak))
        return render(figures)

    def _health(self) -> tuple[str, str]:
        if self.link.bound:
            return "green", ""
        return "yellow", "carrier link not bound"

    # --- mobile-originated ------------------------------------------------------------

    def on_deliver(self, pdu: Pdu) -> int:
        """The command_status for a deliver_sm / data_sm; the dialogue runs afterwards."""
        try:
            return self._classify(pdu)
        except Exception:
            _log.failure("ussd_deliver_failed sequence_number={seq}", seq=pdu.sequence_number)
            return CommandStatus.ESME_RSYSERR

    def _classify(self, pdu: Pdu) -> int:
        if int(pdu.params.get("esm_class", 0)) & ESM_CLASS_DELIVERY_RECEIPT:
            return self._receipt(pdu)
        try:
            message = parse_mobile_originated(self.dialect, pdu)
        except DialectError as error:
            return self._rejected(pdu, error.status, str(error))
        if message.action is UssdAction.BEGIN and _root(message.service_code) not in self._roots:
            return self._rejected(pdu, CommandStatus.ESME_RINVDSTADR, "not our short code")
        if len(self._tasks) >= self.config.max_turns_in_flight:
            return self._rejected(pdu, CommandStatus.ESME_RMSGQFUL, "too many turns in flight")
        self._spawn(self._handle(message))
        return CommandStatus.ESME_ROK

    def _rejected(self, pdu: Pdu, status: int, reason: str) -> int:
        self.counters.rejected_pdus += 1
        _log.warn(
            "ussd_pdu_rejected status={status} reason={reason} msisdn={msisdn}",
            status=status_name(status),
            reason=reason,
            msisdn=mask_msisdn(str(pdu.params.get("source_addr", ""))),
        )
        return status

    async def _handle(self, message: UssdMessage) -> None:
        key = self._key(message.msisdn, message.session_id)
        screen: Screen | None = None
        if message.action is UssdAction.BEGIN:
            screen = await self.sessions.begin(key, _dial_string(message))
        elif message.action is UssdAction.CONTINUE:
            screen = await self.sessions.answer(key, message.text)
        elif message.action is UssdAction.ABORT:
            await self.sessions.abort(key)
        else:
            # The handset confirmed a notification (USSN confirm): release the dialogue.
            _log.debug("ussd_notification_acknowledged msisdn={msisdn}", msisdn=_mask(key))
            release = self._mobile_terminated(UssdAction.END, key, message.service_code, "")
            await self._submit_quietly(release, key)
        if screen is not None:
            await self._send_screen(key, message.service_code, screen)

    async def _send_screen(self, key: DialogueKey, service_code: str, screen: Screen) -> None:
        reply = screen.reply
        assert fits_screen(reply.text, self.dialect.limits), f"over the screen: {reply.text!r}"
        action = UssdAction.END if reply.end else UssdAction.CONTINUE
        pdu = self._mobile_terminated(action, key, service_code, reply.text)
        try:
            await self._submit(pdu)
        except PushFailed as error:
            _log.warn(
                "ussd_screen_not_delivered session_id={session_id} msisdn={msisdn} error={error}",
                session_id=screen.session_id,
                msisdn=_mask(key),
                error=error,
            )
            if screen.session_id is not None and not reply.end:
                await self.sessions.drop(key, screen.session_id)

    # --- network-initiated ------------------------------------------------------------

    async def push(
        self,
        msisdn: str,
        text: str,
        *,
        expect_reply: bool,
        handler: str = MENU_HANDLER,
        state: dict[str, Any] | None = None,
        language: str | None = None,
    ) -> None:
        """Show ``text`` on a phone: a USSR request (``expect_reply``) or a USSN request.

        A USSR opens a session under a gateway-allocated carrier session id whose answer
        goes to ``handler`` (registered with ``sessions.register_handler``; the default
        opens the menu), in ``language``: by default the subscriber's remembered one, which
        ``sessions.remembered_language`` gives for writing ``text``. Raises ``ValueError``
        for text over one screen, ``SessionOpen`` when the phone is in a dialogue
        (MSISDN-keyed dialects), ``SessionsFull`` at ``max_sessions`` and ``PushFailed``
        when the network refuses it.
        """
        if not fits_screen(text, self.dialect.limits):
            raise ValueError("a pushed screen must fit one screen")
        code = self.config.default_code
        if not expect_reply:
            key = self._key(msisdn, self._allocate_push_id())
            await self._submit(self._mobile_terminated(UssdAction.NOTIFY, key, code, text))
            self.counters.pushes += 1
            return
        record = None
        for _ in range(PUSH_ID_ATTEMPTS):
            key = self._key(msisdn, self._allocate_push_id())
            try:
                record = await self.sessions.open_pushed(
                    key, code, text, handler=handler, state=state, language=language
                )
                break
            except SessionOpen:
                if key.carrier_session_id is None:
                    raise
        if record is None:
            raise SessionOpen(f"no free carrier session id for {mask_msisdn(msisdn)}")
        try:
            await self._submit(self._mobile_terminated(UssdAction.CONTINUE, key, code, text))
        except PushFailed:
            await self.sessions.drop(key, record.session_id)
            raise
        self.counters.pushes += 1

    async def send_sms(self, msisdn: str, text: str, *, receipt: bool = True) -> str:
        """Send an SMS (no ``ussd_service_op``); the SMSC's message id.

        Raises ``TextCodingError`` for text over ``MAX_SMS_SEGMENTS`` segments and
        ``PushFailed`` when the network refuses it.
        """
        return await self.sms.send(msisdn, text, receipt=receipt)

    def _receipt(self, pdu: Pdu) -> int:
        try:
            self.sms.received(pdu, self._reactor.seconds())
        except TlvValueError as error:
            return self._rejected(pdu, CommandStatus.ESME_RINVOPTPARAMVAL, str(error))
        return CommandStatus.ESME_ROK

    # --- helpers ----------------------------------------------------------------------

    async def _submit_quietly(self, pdu: Pdu, key: DialogueKey) -> None:
        """Submit a PDU nobody waits for; a refusal is logged, the network times it out."""
        try:
            await self._submit(pdu)
        except PushFailed as error:
            _log.warn(
                "ussd_release_failed msisdn={msisdn} error={error}", msisdn=_mask(key), error=error
            )

    async def _submit(self, pdu: Pdu) -> Pdu:
        try:
            response = await self.link.submit(pdu)
        except EsmeError as error:
            raise PushFailed(f"{type(error).__name__}: {error}") from error
        if not response.status_ok:
            status = response.command_status
            raise PushFailed(f"refused with {status_name(status)}", status)
        return response

    def _mobile_terminated(
        self, action: UssdAction, key: DialogueKey, service_code: str, text: str
    ) -> Pdu:
        session_id = None if key.carrier_session_id is None else int(key.carrier_session_id)
        message = UssdMessage(action, key.msisdn, _root(service_code), text, session_id)
        return build_mobile_terminated(self.dialect, message, 0)

    def _key(self, msisdn: str, session_id: int | None) -> DialogueKey:
        if session_id is None or self.dialect.session_key is SessionKey.MSISDN_ONLY:
            return DialogueKey(msisdn)
        return DialogueKey(msisdn, str(session_id))

    def _allocate_push_id(self) -> int | None:
        limit = _SESSION_ID_LIMITS.get(self.dialect.session_key)
        if limit is None:
            return None
        self._next_push_id = (self._next_push_id + 1) % (limit + 1)
        return self._next_push_id

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.failure("ussd_turn_failed", failure=Failure(task.exception()))


def _fits_within(inner: ScreenLimits, outer: ScreenLimits) -> bool:
    """Whether every screen drawn for ``inner`` also fits ``outer``."""
    return (
        inner.gsm7 <= outer.gsm7
        and inner.latin1 <= outer.latin1
        and inner.ucs2 <= outer.ucs2
        and set(inner.codings) <= set(outer.codings)
    )


def _global_reactor() -> Clock:
    from twisted.internet import reactor

    return cast(Clock, reactor)


def _root(code: str) -> str:
    """The service code's first digits: ``*123*1#``, ``123`` and ``*123#`` give ``123``."""
    return code.strip().lstrip("*").rstrip("#").split("*", 1)[0]


def _dial_string(message: UssdMessage) -> str:
    """What the subscriber dialled: the BEGIN's text when it is the dial string itself."""
    text = message.text.strip()
    if text.startswith("*") and text.endswith("#") and _root(text) == _root(message.service_code):
        return text
    return f"*{_root(message.service_code)}#"


def _mask(key: DialogueKey) -> str:
    return mask_msisdn(key.msisdn)
