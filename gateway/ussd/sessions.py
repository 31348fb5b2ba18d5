"""USSD sessions: one subscriber dialogue between screens, as an explicit state machine.

A session is keyed by ``DialogueKey`` (channel, MSISDN, carrier session id): some USSD
centres send no session id and some reuse ids across subscribers, so the MSISDN is
always part of the key (a dialect that keys on the MSISDN alone passes no session id).

``SessionManager`` runs the dialogue's turns for every channel (SMPP, HTTP): a BEGIN
reserves a slot in the store (bounded by ``max_sessions``) and asks the menu for the
first screen; each answer feeds the menu; the menu's last screen, an abort or a timeout
removes the session. Every turn is a ``Screen`` for the channel to deliver; the manager
never touches a socket. Time comes from an injected ``IReactorTime`` (``task.Clock`` in
tests): the screen and dialogue deadlines are timers, and a menu slower than the
application timeout is answered with an apology screen instead of silence.

Records outlive their deadline in the store by ``STORE_GRACE`` seconds so that the
deadline timer still finds the record it must expire and count.

The subscriber's language outlives the dialogue: when a turn changes it, the store
remembers it under the MSISDN, and the next dialogue (dialled or pushed) starts in it.
The records these turns move (``SessionRecord``, ``Screen``...) are in
``gateway.ussd.records``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any, Final, Protocol

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from gateway.ussd.records import (
    DEFAULT_LANGUAGE,
    DialogueKey,
    Outcome,
    SaveResult,
    Screen,
    SessionRecord,
    SessionState,
    SessionTimers,
    UssdCounters,
)
from gateway.ussd.stores import SessionStore
from gateway.ussd_menus.engine import Dialogue, MenuEngine, Reply, mask_msisdn
from gateway.ussd_menus.texts import LANGUAGES, translate

STORE_GRACE: Final = 5.0  # seconds a record stays stored after its deadline
MENU_HANDLER: Final = "menu"  # a pushed session whose answer opens the menu

_log = Logger(namespace="gateway.ussd.sessions")


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the sessions need of an ``IReactorTime`` (the reactor, or ``task.Clock``)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> DelayedCall: ...


class EndReason(Enum):
    COMPLETED = "completed"  # the menu's last screen was sent
    ABORTED = "aborted"  # the subscriber or the network released the dialogue
    SCREEN_TIMEOUT = "screen_timeout"  # the subscriber did not answer a screen in time
    DIALOGUE_TIMEOUT = "dialogue_timeout"  # the whole dialogue took too long
    APPLICATION_TIMEOUT = "application_timeout"  # the menu did not answer in time
    FAILED = "failed"  # the answer handler raised
    DROPPED = "dropped"  # the screen could not be delivered


class SessionsFull(RuntimeError):
    """``max_sessions`` sessions are live: no new session can be opened."""


class SessionOpen(RuntimeError):
    """A session is already live under the key a network-initiated screen would use."""


AnswerHandler = Callable[[Dialogue, str], Awaitable[Reply]]
_Step = Callable[[Dialogue], Coroutine[Any, Any, Reply]]


class _Turn:
    """A screen being prepared for one key; ``superseded`` when aborted or replaced."""

    __slots__ = ("superseded",)

    def __init__(self) -> None:
        self.superseded = False


class SessionManager:
    """The sessions of every channel, in a shared store, driven by the menu engine."""

    def __init__(
        self,
        store: SessionStore,
        engine: MenuEngine,
        *,
        clock: Clock,
        timers: SessionTimers | None = None,
        max_sessions: int = 100_000,
        counters: UssdCounters | None = None,
    ) -> None:
        if max_sessions <= 0:
            raise ValueError(f"max_sessions must be positive, got {max_sessions}")
        self.store = store
        self.engine = engine
        self.timers = timers or SessionTimers()
        self.max_sessions = max_sessions
        self.counters = counters or UssdCounters()
        self._clock = clock
        self._handlers: dict[str, AnswerHandler] = {}
        self._turns: dict[str, _Turn] = {}
        self._deadline_calls: dict[str, DelayedCall] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    def register_handler(self, name: str, handler: AnswerHandler) -> None:
        """Name a handler for the answers to pushed (network-initiated) screens."""
        if name == MENU_HANDLER or not name:
            raise ValueError(f"handler name {name!r} is reserved")
        self._handlers[name] = handler

    async def load(self, key: DialogueKey) -> SessionRecord | None:
        """The live session under ``key`` (None when there is none or its deadline passed)."""
        record = await self.store.load(key)
        if record is None or self._clock.seconds() >= record.deadline:
            return None
        return record

    async def remembered_language(self, msisdn: str) -> str:
        """The language the subscriber last chose (``DEFAULT_LANGUAGE`` until they do)."""
        return await self.store.load_language(msisdn) or DEFAULT_LANGUAGE

    # --- mobile-originated turns ------------------------------------------------------

    async def begin(
        self, key: DialogueKey, service_code: str, *, language: str | None = None
    ) -> Screen | None:
        """The subscriber dialled ``service_code``: a new session (replacing a live one).

        The session starts in ``language``, by default the one the subscriber last chose.
        None when the session was aborted or replaced while the menu was answering.
        """
        if language is None:
            language = await self.remembered_language(key.msisdn)
        self._supersede(key)
        now = self._clock.seconds()
        record = SessionRecord(
            key=key,
            session_id=secrets.token_hex(8),
            service_code=service_code,
            state=SessionState.AWAITING_APPLICATION,
            created_at=now,
            screen_deadline=now + self.timers.application,
            dialogue_deadline=now + self.timers.dialogue,
            language=language,
        )
        saved = await self.store.save(record, self._ttl(record, now), limit=self.max_sessions)
        if saved is SaveResult.REFUSED:
            self.counters.busy += 1
            self.counters.screens_sent += 1
            _log.warn(
                "ussd_session_refused_busy msisdn={msisdn} max_sessions={max_sessions}",
                msisdn=mask_msisdn(key.msisdn),
                max_sessions=self.max_sessions,
            )
            return Screen(self.engine.busy(record.dialogue()), Outcome.BUSY, None)
        if saved is SaveResult.REPLACED:
            self.counters.sessions_ended += 1
            self._event(record, "ussd_session_replaced")
        self.counters.sessions_started += 1
        # One info line per dialogue (when it ends); its start is a debug detail.
        self._event(record, "ussd_session_started", LogLevel.debug, service_code=service_code)
        return await self._turn(record, self.engine.begin)

    async def answer(
        self, key: DialogueKey, text: str, *, input_history: str | None = None
    ) -> Screen | None:
        """The subscriber answered the screen on the handset.

        An answer for no live session gets the "Session expired" screen. None while the
        previous answer of the same session is still being handled here (a duplicate).
        ``input_history`` is kept with the session for the channel (see the callback form).
        """
        if str(key) in self._turns:
            self._log_ignored(key)
            return None
        record = await self.store.load(key)
        now = self._clock.seconds()
        if record is None:
            return await self._expired_screen(key, record)
        if record.state is SessionState.AWAITING_APPLICATION and now < record.deadline:
            self._log_ignored(key)  # another node is preparing this session's screen
            return None
        if now >= record.deadline:
            await self._end(record, self._timeout_reason(record, now))
            return await self._expired_screen(key, record)
        self._disarm(str(key))
        record.move_to(SessionState.AWAITING_APPLICATION)
        record.screen_deadline = now + self.timers.application
        record.answers += 1
        if input_history is not None:
            record.input_history = input_history
        step = self._answer_step(record, text)
        await self.store.save(record, self._ttl(record, now))
        return await self._turn(record, step)

    async def abort(self, key: DialogueKey) -> bool:
        """The subscriber or the network released the dialogue; whether one was live."""
        self._supersede(key)
        record = await self.store.load(key)
        if record is None:
            return False
        return await self._end(record, EndReason.ABORTED)

    async def drop(self, key: DialogueKey, session_id: str) -> None:
        """The screen of session ``session_id`` could not be delivered: forget the session."""
        record = await self.store.load(key)
        if record is not None and record.session_id == session_id:
            self._supersede(key)
            await self._end(record, EndReason.DROPPED)

    # --- network-initiated dialogues --------------------------------------------------

    async def open_pushed(
        self,
        key: DialogueKey,
        service_code: str,
        text: str,
        *,
        handler: str = MENU_HANDLER,
        state: dict[str, Any] | None = None,
        language: str | None = None,
    ) -> SessionRecord:
        """A session for a screen the network side pushes; its answer goes to ``handler``.

        The session is in ``language``, by default the one the subscriber last chose.
        Raises ``SessionOpen`` when a session is live under ``key``, ``SessionsFull`` at
        ``max_sessions`` and ``ValueError`` for an unknown handler.
        """
        if handler != MENU_HANDLER and handler not in self._handlers:
            raise ValueError(f"no answer handler named {handler!r}")
        json.dumps(state or {})  # must be storable
        if await self.load(key) is not None:
            raise SessionOpen(f"a session is live for {mask_msisdn(key.msisdn)}")
        if language is None:
            language = await self.remembered_language(key.msisdn)
        now = self._clock.seconds()
        record = SessionRecord(
            key=key,
            session_id=secrets.token_hex(8),
            service_code=service_code,
            state=SessionState.AWAITING_SUBSCRIBER,
            created_at=now,
            screen_deadline=now + self.timers.screen,
            dialogue_deadline=now + self.timers.dialogue,
            language=language,
            dialogue_state=dict(state or {}),
            last_screen=text,
            network_initiated=True,
            answer_handler=handler,
            screens=1,
        )
        saved = await self.store.save(record, self._ttl(record, now), limit=self.max_sessions)
        if saved is SaveResult.REFUSED:
            self.counters.busy += 1
            raise SessionsFull(f"{self.max_sessions} sessions are live")
        self._supersede(key)
        self.counters.sessions_started += 1
        self.counters.screens_sent += 1
        self._event(record, "ussd_session_pushed", handler=handler)
        self._arm(record)
        return record

    # --- shutting down ----------------------------------------------------------------

    async def settle(self) -> None:
        """Wait for the deadline work under way (timers that fired)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop the deadline timers (the store keeps the records and their expiry)."""
        for call in self._deadline_calls.values():
            if call.active():
                call.cancel()
        self._deadline_calls.clear()
        await self.settle()

    # --- one turn ---------------------------------------------------------------------

    def _answer_step(self, record: SessionRecord, text: str) -> _Step:
        handler = record.answer_handler
        if handler is None:
            return lambda dialogue: self.engine.answer(dialogue, text)
        if handler == MENU_HANDLER:
            record.answer_handler = None  # the menu takes the dialogue from here on
            return self.engine.begin

        async def step(dialogue: Dialogue) -> Reply:
            answer_handler = self._handlers.get(handler)
            if answer_handler is None:  # not registered on this node: the apology screen
                raise LookupError(f"no answer handler named {handler!r}")
            return await answer_handler(dialogue, text)

        return step

    async def _turn(self, record: SessionRecord, step: _Step) -> Screen | None:
        name = str(record.key)
        turn = self._turns[name] = _Turn()
        dialogue = record.dialogue()
        try:
            reply, reason = await self._within_application_timeout(record, step(dialogue))
        finally:
            if self._turns.get(name) is turn:
                del self._turns[name]
        if turn.superseded:
            return None
        if reply is None:
            if reason is EndReason.APPLICATION_TIMEOUT:
                self.counters.application_timeouts += 1
            await self._end(record, reason)
            self.counters.screens_sent += 1
            apology = Reply(translate("engine.unavailable", record.language), end=True)
            return Screen(apology, Outcome.APOLOGY, record.session_id)
        chose_language = dialogue.language != record.language
        record.language = dialogue.language
        screen = await self._after_reply(record, reply)
        if chose_language:  # after the record is saved: no wider window for an abort
            await self._remember_language(record)
        return screen

    async def _within_application_timeout(
        self, record: SessionRecord, step: Coroutine[Any, Any, Reply]
    ) -> tuple[Reply | None, EndReason]:
        """The menu's reply, or None (with why) when it failed or took too long."""
        task = asyncio.ensure_future(step)
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(_: object = None) -> None:
            if not first.done():
                first.set_result(None)

        timer = self._clock.callLater(self.timers.application, settle)
        task.add_done_callback(settle)
        try:
            await first
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            if timer.active():
                timer.cancel()
        if not task.done():
            task.add_done_callback(lambda t: self._late_reply(record, t))
            return None, EndReason.APPLICATION_TIMEOUT
        error = task.exception()
        if error is not None:
            _log.failure(
                "ussd_answer_handler_failed session_id={session_id}",
                failure=Failure(error),
                session_id=record.session_id,
            )
            return None, EndReason.FAILED
        return task.result(), EndReason.COMPLETED

    async def _after_reply(self, record: SessionRecord, reply: Reply) -> Screen:
        now = self._clock.seconds()
        self.counters.screens_sent += 1
        record.screens += 1
        if reply.end:
            await self._end(record, EndReason.COMPLETED)
            return Screen(reply, Outcome.MENU, record.session_id)
        if now >= record.dialogue_deadline:
            await self._end(record, EndReason.DIALOGUE_TIMEOUT)
            return Screen(self.engine.expired(record.dialogue()), Outcome.EXPIRED, None)
        record.move_to(SessionState.AWAITING_SUBSCRIBER)
        record.screen_deadline = now + self.timers.screen
        record.last_screen = reply.text
        await self.store.save(record, self._ttl(record, now))
        self._arm(record)
        return Screen(reply, Outcome.MENU, record.session_id)

    def _late_reply(self, record: SessionRecord, task: asyncio.Future[Reply]) -> None:
        error = None if task.cancelled() else task.exception()
        _log.warn(
            "ussd_late_reply_discarded session_id={session_id} error={error!r}",
            session_id=record.session_id,
            error=error,
        )

    async def _remember_language(self, record: SessionRecord) -> None:
        """Keep the language the turn chose for the subscriber's next dialogues."""
        if record.language not in LANGUAGES:
            return  # the menu reads English for it; the choice is not worth keeping
        await self.store.save_language(record.key.msisdn, record.language)
        self._event(record, "ussd_language_remembered", language=record.language)

    def _log_ignored(self, key: DialogueKey) -> None:
        _log.info("ussd_answer_ignored_busy msisdn={msisdn}", msisdn=mask_msisdn(key.msisdn))

    async def _expired_screen(self, key: DialogueKey, record: SessionRecord | None) -> Screen:
        if record is not None:
            language = record.language
        else:
            language = await self.remembered_language(key.msisdn)
        self.counters.screens_sent += 1
        dialogue = Dialogue(msisdn=key.msisdn, service_code="", language=language)
        _log.info("ussd_answer_without_session msisdn={msisdn}", msisdn=mask_msisdn(key.msisdn))
        return Screen(self.engine.expired(dialogue), Outcome.EXPIRED, None)

    # --- ending and deadlines ---------------------------------------------------------

    async def _end(self, record: SessionRecord, reason: EndReason) -> bool:
        """Remove the session; counted and logged once, by whoever removed it from the store."""
        self._disarm(str(record.key))
        if record.state is not SessionState.ENDED:
            record.move_to(SessionState.ENDED)
        if not await self.store.delete(record.key):
            return False
        self.counters.sessions_ended += 1
        if reason is EndReason.ABORTED:
            self.counters.aborts += 1
        elif reason in (EndReason.SCREEN_TIMEOUT, EndReason.DIALOGUE_TIMEOUT):
            self.counters.timeouts += 1
        self._event(
            record,
            "ussd_session_ended",
            service_code=record.service_code,
            reason=reason.value,
            screens=record.screens,
        )
        return True

    def _timeout_reason(self, record: SessionRecord, now: float) -> EndReason:
        if now >= record.dialogue_deadline:
            return EndReason.DIALOGUE_TIMEOUT
        if record.state is SessionState.AWAITING_APPLICATION:
            return EndReason.APPLICATION_TIMEOUT  # the node preparing the screen went away
        return EndReason.SCREEN_TIMEOUT

    def _arm(self, record: SessionRecord) -> None:
        name = str(record.key)
        self._disarm(name)
        delay = max(0.0, record.deadline - self._clock.seconds())
        self._deadline_calls[name] = self._clock.callLater(
            delay, self._deadline_passed, record.key, record.session_id, record.screens
        )

    def _disarm(self, name: str) -> None:
        call = self._deadline_calls.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def _supersede(self, key: DialogueKey) -> None:
        """Whatever this node was doing for ``key`` no longer matters."""
        name = str(key)
        turn = self._turns.pop(name, None)
        if turn is not None:
            turn.superseded = True
        self._disarm(name)

    def _deadline_passed(self, key: DialogueKey, session_id: str, screens: int) -> None:
        self._deadline_calls.pop(str(key), None)
        task = asyncio.ensure_future(self._expire(key, session_id, screens))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _expire(self, key: DialogueKey, session_id: str, screens: int) -> None:
        record = await self.store.load(key)
        if record is None or record.session_id != session_id or record.screens != screens:
            return  # answered, ended or replaced meanwhile (here or on another node)
        if record.state is SessionState.AWAITING_SUBSCRIBER:
            await self._end(record, self._timeout_reason(record, self._clock.seconds()))

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.failure("ussd_session_expiry_failed", failure=Failure(task.exception()))

    def _ttl(self, record: SessionRecord, now: float) -> float:
        return max(record.deadline - now, 0.0) + STORE_GRACE

    def _event(
        self, record: SessionRecord, event: str, level: LogLevel = LogLevel.info, **fields: object
    ) -> None:
        extra = "".join(f" {name}={{{name}}}" for name in fields)
        _log.emit(
            level,
            event + " session_id={session_id} msisdn={msisdn}" + extra,
            session_id=record.session_id,
            msisdn=mask_msisdn(record.key.msisdn),
            **fields,
        )
