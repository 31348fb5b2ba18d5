"""The data of USSD sessions: keys, states, stored records, timers, counters and screens.

Sans-I/O: nothing here touches a clock, a socket or a store. ``SessionState`` and its
``TRANSITIONS`` table are the session's state machine; ``SessionRecord`` is what a
store keeps between screens (as JSON, so several gateway nodes can share it);
``SessionManager`` (``gateway.ussd.sessions``) drives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, Final
from urllib.parse import quote

from gateway.ussd_menus.screens import Dialogue, Reply

MAX_TEXT_CHARS: Final = 400  # longest stored screen text (a screen is at most 182)
MAX_HISTORY_CHARS: Final = 4096  # longest stored input history
DEFAULT_LANGUAGE: Final = "en"  # a subscriber's language until they choose another
MAX_LANGUAGE_CHARS: Final = 16  # longest language code a store remembers


class SessionState(Enum):
    AWAITING_APPLICATION = "awaiting_application"  # the menu is preparing the next screen
    AWAITING_SUBSCRIBER = "awaiting_subscriber"  # a screen is on the handset
    ENDED = "ended"


TRANSITIONS: Final[Mapping[SessionState, frozenset[SessionState]]] = {
    SessionState.AWAITING_APPLICATION: frozenset(
        {SessionState.AWAITING_SUBSCRIBER, SessionState.ENDED}
    ),
    SessionState.AWAITING_SUBSCRIBER: frozenset(
        {SessionState.AWAITING_APPLICATION, SessionState.ENDED}
    ),
    SessionState.ENDED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A session asked to move between states the transition table does not allow."""


class SaveResult(Enum):
    """What a store did with a record it was asked to save."""

    CREATED = "created"
    REPLACED = "replaced"  # a live record under the same key was overwritten
    REFUSED = "refused"  # the key was not live and ``limit`` records are


class Outcome(Enum):
    MENU = "menu"  # a screen of the menu (or of a push answer handler)
    BUSY = "busy"  # "Service busy": max_sessions reached, nothing stored
    EXPIRED = "expired"  # "Session expired": an answer for no live session
    APOLOGY = "apology"  # the menu failed or was too slow; the session ended


@dataclass(frozen=True)
class DialogueKey:
    """What identifies a dialogue: the channel, the MSISDN and the carrier's session id."""

    msisdn: str
    carrier_session_id: str | None = None  # None: the carrier sent none, or keys on MSISDN
    channel: str = "smpp"

    def __post_init__(self) -> None:
        if self.carrier_session_id == "":
            object.__setattr__(self, "carrier_session_id", None)

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The store key; computed once, since every turn uses it several times."""
        session = "" if self.carrier_session_id is None else quote(self.carrier_session_id, "")
        return f"{quote(self.channel, '')}:{quote(self.msisdn, '')}:{session}"


@dataclass(frozen=True)
class SessionTimers:
    """Seconds allowed for the whole dialogue, for the subscriber and for the menu."""

    dialogue: float = 180.0
    screen: float = 30.0
    application: float = 15.0

    def __post_init__(self) -> None:
        for name in ("dialogue", "screen", "application"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SessionTimers.{name} must be positive")


@dataclass
class UssdCounters:
    """Counts for /metrics; only ever incremented."""

    sessions_started: int = 0
    screens_sent: int = 0
    sessions_ended: int = 0
    aborts: int = 0
    timeouts: int = 0
    application_timeouts: int = 0
    busy: int = 0
    pushes: int = 0
    sms_sent: int = 0
    delivery_receipts: int = 0
    rejected_pdus: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class SessionRecord:
    """One live session as stored between screens (JSON, so several nodes can share it)."""

    key: DialogueKey
    session_id: str  # the gateway's own id, for logs (the key holds the MSISDN)
    service_code: str
    state: SessionState
    created_at: float
    screen_deadline: float  # when the current wait ends (the subscriber's, or the menu's)
    dialogue_deadline: float
    language: str = DEFAULT_LANGUAGE
    dialogue_state: dict[str, Any] = field(default_factory=dict)
    last_screen: str = ""
    network_initiated: bool = False
    answer_handler: str | None = None  # None: answers go to the menu engine
    answers: int = 0  # subscriber inputs so far
    input_history: str = ""  # the channel's record of the inputs (the callback form's text)
    screens: int = 0  # screens sent so far (the record's version)

    @property
    def deadline(self) -> float:
        return min(self.screen_deadline, self.dialogue_deadline)

    def move_to(self, state: SessionState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"session {self.session_id}: {self.state.name} -> {state.name}")
        self.state = state

    def dialogue(self) -> Dialogue:
        """The menu's view; it shares ``dialogue_state`` with this record."""
        return Dialogue(
            msisdn=self.key.msisdn,
            service_code=self.service_code,
            language=self.language,
            state=self.dialogue_state,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "key": [self.key.channel, self.key.msisdn, self.key.carrier_session_id],
                "session_id": self.session_id,
                "service_code": self.service_code,
                "state": self.state.value,
                "created_at": self.created_at,
                "screen_deadline": self.screen_deadline,
                "dialogue_deadline": self.dialogue_deadline,
                "language": self.language,
                "dialogue_state": self.dialogue_state,
                "last_screen": self.last_screen[:MAX_TEXT_CHARS],
                "network_initiated": self.network_initiated,
                "answer_handler": self.answer_handler,
                "answers": self.answers,
                "input_history": self.input_history[:MAX_HISTORY_CHARS],
                "screens": self.screens,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionRecord:
        """The record in ``text``; ``ValueError`` for anything that is not one."""
        try:
            data = json.loads(text)
            channel, msisdn, carrier_session_id = data["key"]
            record = cls(
                key=DialogueKey(str(msisdn), carrier_session_id, str(channel)),
                session_id=str(data["session_id"]),
                service_code=str(data["service_code"]),
                state=SessionState(data["state"]),
                created_at=float(data["created_at"]),
                screen_deadline=float(data["screen_deadline"]),
                dialogue_deadline=float(data["dialogue_deadline"]),
                language=str(data["language"]),
                dialogue_state=dict(data["dialogue_state"]),
                last_screen=str(data["last_screen"]),
                network_initiated=bool(data["network_initiated"]),
                answer_handler=data["answer_handler"],
                answers=int(data["answers"]),
                input_history=str(data.get("input_history", "")),
                screens=int(data["screens"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a session record: {error}") from None
        if record.answer_handler is not None and not isinstance(record.answer_handler, str):
            raise ValueError("not a session record: answer_handler")
        return record


@dataclass(frozen=True)
class Screen:
    """What to show the subscriber after a turn."""

    reply: Reply
    outcome: Outcome
    session_id: str | None  # None when no session was kept (busy, expired)
