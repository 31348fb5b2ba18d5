"""The USSD centre: dialogues between handsets and the applications bound over SMPP.

A dialogue starts when a handset dials a service code (``*123#``: BEGIN toward the
account that owns short code 123) or when an application sends a screen to a handset
that has none open (network-initiated). Each dialogue carries the carrier session id its
account's dialect asks for (``its_session_info`` number 0-255, unique among the
MSISDN's live dialogues; ``user_message_reference`` 0-65535, unique network-wide; none
for MSISDN-only dialects) and lives under three timers on the injected clock:

- application timer: the application must answer a unit in ``application_timeout``,
  otherwise the handset gets a ``network_error`` screen and the application an ABORT;
- screen timer: the subscriber must answer a screen in ``screen_timeout``, otherwise the
  application gets an ABORT and the handset a ``timeout`` screen;
- dialogue timer: ``dialogue_timeout`` overall, ended as the screen timer does.

A handset has at most one live dialogue, so dialogues are found by MSISDN in O(1); the
session id of an MT unit must match the live one. MT units for ended dialogues are
answered ``ESME_RINVDSTADR``: the centre remembers recently ended (account, MSISDN,
session id) keys for ``dialogue_timeout`` (MSISDN-only dialects cannot tell a late unit
from a new push, so there a CONTINUE to an idle handset always opens a dialogue).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from gateway.smpp.constants import CommandStatus
from gateway.smpp.dialects import (
    Dialect,
    DialectError,
    SessionKey,
    UssdAction,
    UssdMessage,
    build_mobile_originated,
    parse_mobile_terminated,
)
from gateway.smpp.gsm0338 import TextCodingError
from gateway.smpp.pdu import Pdu
from simulators.modem.clock import ReactorClock, Timer, cancel
from simulators.modem.handsets import (
    Handset,
    HandsetState,
    InvalidInput,
    Screen,
    mask,
    normalise_msisdn,
)
from simulators.modem.smpp_link import DeliveryResult, SubmitOutcome

log = logging.getLogger(__name__)

S = CommandStatus
RELEASED, TIMEOUT, ABORTED, NETWORK_ERROR = "released", "timeout", "aborted", "network_error"
UNAVAILABLE_TEXT = "Connection problem or invalid MMI code."
TIMEOUT_TEXT = "USSD session timed out."
MAX_RECENT = 100_000  # ended dialogue keys remembered, to refuse late MT units
_DIAL = re.compile(r"\*(\d{1,15})(?:\*[0-9*]*)?#")
MAX_DIAL = 182  # characters of a dial string: one USSD unit


class DialogueState(Enum):
    AWAITING_APPLICATION = "awaiting_application"
    AWAITING_SUBSCRIBER = "awaiting_subscriber"
    ENDED = "ended"


_TRANSITIONS: dict[DialogueState, frozenset[DialogueState]] = {
    DialogueState.AWAITING_APPLICATION: frozenset(DialogueState),  # NOTIFY keeps waiting
    DialogueState.AWAITING_SUBSCRIBER: frozenset(
        {DialogueState.AWAITING_APPLICATION, DialogueState.ENDED}
    ),
    DialogueState.ENDED: frozenset(),
}


@dataclass(frozen=True)
class Route:
    """A short code and the account (and so the dialect) that serves it."""

    short_code: str
    system_id: str
    dialect: Dialect


class MobileOriginatedLinks(Protocol):
    """How units reach the applications (``smsc.SmscFactory``)."""

    def deliver(
        self, system_id: str, pdu: Pdu, on_result: DeliveryResult, *, store: bool = False
    ) -> bool: ...


DialogueKey = tuple[str, str, int | None]  # account, MSISDN, session id


@dataclass(eq=False)
class Dialogue:
    route: Route
    handset: Handset
    session_id: int | None
    network_initiated: bool
    state: DialogueState = DialogueState.AWAITING_APPLICATION
    unit: int = 0  # MO units sent; a delivery failure only counts for the latest
    notification: str = ""  # the last USSN text shown, kept by an empty END
    step_timer: Timer | None = field(default=None, repr=False)
    life_timer: Timer | None = field(default=None, repr=False)

    @property
    def key(self) -> DialogueKey:
        return (self.route.system_id, self.handset.msisdn, self.session_id)

    def move(self, new: DialogueState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise AssertionError(f"dialogue {self.state.name} -> {new.name} is not allowed")
        self.state = new


class UssdCentre:
    def __init__(
        self,
        clock: ReactorClock,
        links: MobileOriginatedLinks,
        routes: Mapping[str, Route],
        handset: Callable[[str], Handset],
        message_id: Callable[[], str],
    ) -> None:
        self._clock = clock
        self._links = links
        self._routes = dict(routes)
        self._home: dict[str, Route] = {}  # account -> its first short code
        for route in routes.values():
            self._home.setdefault(route.system_id, route)
        self._handset = handset
        self._message_id = message_id
        self._live: dict[str, Dialogue] = {}  # by MSISDN
        self._its_next: dict[str, int] = {}  # next its_session_info number per MSISDN
        self._umr_live: dict[int, Dialogue] = {}
        self._umr_next = 0
        self._recent: OrderedDict[DialogueKey, float] = OrderedDict()

    @property
    def live_dialogues(self) -> int:
        return len(self._live)

    # --- the handset's side (Switch) ---------------------------------------------------------

    def originate(self, handset: Handset, code: str) -> None:
        code = code.strip()
        match = _DIAL.fullmatch(code) if len(code) <= MAX_DIAL else None
        route = self._routes.get(match[1]) if match else None
        if route is None:
            handset.show(Screen(UNAVAILABLE_TEXT, False, False, NETWORK_ERROR), HandsetState.IDLE)
            return
        session_id = self._allocate(route.dialect, handset.msisdn)
        if session_id is None and route.dialect.session_key is not SessionKey.MSISDN_ONLY:
            handset.show(Screen(UNAVAILABLE_TEXT, False, False, NETWORK_ERROR), HandsetState.IDLE)
            return
        dialogue = Dialogue(route, handset, session_id, network_initiated=False)
        pdu = self._mo_pdu(dialogue, UssdAction.BEGIN, code)
        self._open(dialogue)
        handset.await_network()
        self._send_unit(dialogue, pdu)

    def answer(self, handset: Handset, text: str) -> None:
        dialogue = self._live.get(handset.msisdn)
        if dialogue is None or dialogue.state is not DialogueState.AWAITING_SUBSCRIBER:
            raise AssertionError(f"{handset!r} answers without an open screen")
        pdu = self._mo_pdu(dialogue, UssdAction.CONTINUE, text)
        dialogue.move(DialogueState.AWAITING_APPLICATION)
        handset.await_network()
        self._send_unit(dialogue, pdu)

    def release(self, handset: Handset) -> None:
        dialogue = self._live.get(handset.msisdn)
        if dialogue is not None:
            self._end(dialogue, ABORTED, "", abort_application=True)

    def give_up(self, handset: Handset) -> None:
        dialogue = self._live.get(handset.msisdn)
        if dialogue is not None:
            self._end(dialogue, TIMEOUT, TIMEOUT_TEXT, abort_application=True)

    # --- the application's side ---------------------------------------------------------------

    def mobile_terminated(self, system_id: str, dialect: Dialect, pdu: Pdu) -> SubmitOutcome:
        """A ``submit_sm``/``data_sm`` carrying a USSD unit from an application."""
        try:
            message = parse_mobile_terminated(dialect, pdu)
            msisdn = normalise_msisdn(message.msisdn)
        except DialectError as error:
            return SubmitOutcome(error.status)
        except ValueError:
            return SubmitOutcome(S.ESME_RINVDSTADR)
        dialogue = self._live.get(msisdn)
        if (
            dialogue is not None
            and dialogue.route.system_id == system_id
            and message.session_id in (None, dialogue.session_id)
        ):
            if (
                dialogue.state is DialogueState.AWAITING_SUBSCRIBER
                and message.action is not UssdAction.END
            ):
                return SubmitOutcome(S.ESME_RSUBMITFAIL)  # a second screen before the answer
            return self._accept(dialogue, message, pdu)
        if message.action is UssdAction.END or self._recently_ended(
            (system_id, msisdn, message.session_id)
        ):
            return SubmitOutcome(S.ESME_RINVDSTADR)
        if dialogue is not None:
            return SubmitOutcome(S.ESME_RDELIVERYFAILURE)  # the subscriber is busy
        return self._push(system_id, dialect, msisdn, message, pdu)

    def _push(
        self, system_id: str, dialect: Dialect, msisdn: str, message: UssdMessage, pdu: Pdu
    ) -> SubmitOutcome:
        """A network-initiated dialogue: the application's screen to an idle handset."""
        route = self._routes.get(message.service_code)
        if route is None or route.system_id != system_id:
            route = self._home.get(system_id)
        if route is None:
            return SubmitOutcome(S.ESME_RINVSRCADR)
        try:
            handset = self._handset(msisdn)
        except ValueError:  # the network is full
            return SubmitOutcome(S.ESME_RDELIVERYFAILURE)
        session_id = message.session_id
        if session_id is None:
            session_id = self._allocate(dialect, msisdn)
        dialogue = Dialogue(route, handset, session_id, network_initiated=True)
        self._open(dialogue)
        return self._accept(dialogue, message, pdu)

    def _accept(self, dialogue: Dialogue, message: UssdMessage, pdu: Pdu) -> SubmitOutcome:
        coding = int(pdu.get("data_coding", 0))
        return SubmitOutcome(
            S.ESME_ROK, self._message_id(), after=lambda: self._apply(dialogue, message, coding)
        )

    def _apply(self, dialogue: Dialogue, message: UssdMessage, coding: int) -> None:
        if dialogue.state is DialogueState.ENDED:
            return
        ni = dialogue.network_initiated
        if message.action is UssdAction.END:
            text = message.text or dialogue.notification
            self._end(dialogue, RELEASED, text, data_coding=coding)
        elif message.action is UssdAction.CONTINUE:
            dialogue.move(DialogueState.AWAITING_SUBSCRIBER)
            dialogue.notification = ""
            self._arm(dialogue, dialogue.route.dialect.screen_timeout)
            screen = Screen(message.text, True, ni, data_coding=coding)
            dialogue.handset.show(screen, HandsetState.OPEN)
        else:  # NOTIFY: shown, acknowledged; the application still has to release
            dialogue.notification = message.text
            screen = Screen(message.text, False, ni, data_coding=coding)
            dialogue.handset.show(screen, HandsetState.WAITING)
            self._send_unit(dialogue, self._mo_pdu(dialogue, UssdAction.NOTIFY_ACK, ""))

    # --- dialogues -----------------------------------------------------------------------------

    def _open(self, dialogue: Dialogue) -> None:
        msisdn = dialogue.handset.msisdn
        assert msisdn not in self._live, "one live dialogue per handset"
        self._live[msisdn] = dialogue
        dialect = dialogue.route.dialect
        if (
            dialect.session_key is SessionKey.USER_MESSAGE_REFERENCE
            and dialogue.session_id is not None
        ):
            self._umr_live.setdefault(dialogue.session_id, dialogue)
        self._recent.pop(dialogue.key, None)
        dialogue.life_timer = self._clock.callLater(
            dialect.dialogue_timeout, self._life_expired, dialogue
        )

    def _send_unit(self, dialogue: Dialogue, pdu: Pdu) -> None:
        """An MO unit that the application must answer, under the application timer."""
        dialogue.unit += 1
        unit = dialogue.unit
        dialogue.move(DialogueState.AWAITING_APPLICATION)
        self._arm(dialogue, dialogue.route.dialect.application_timeout)

        def delivered(status: int | None) -> None:
            if status != S.ESME_ROK and dialogue.unit == unit:
                self._undeliverable(dialogue, status)

        if not self._links.deliver(dialogue.route.system_id, pdu, delivered):
            self._end(dialogue, NETWORK_ERROR, UNAVAILABLE_TEXT, abort_application=unit > 1)

    def _undeliverable(self, dialogue: Dialogue, status: int | None) -> None:
        if dialogue.state is DialogueState.AWAITING_APPLICATION:
            log.debug(
                "event=ussd_unit_undeliverable msisdn=%s status=%s",
                mask(dialogue.handset.msisdn),
                status,
            )
            self._end(
                dialogue, NETWORK_ERROR, UNAVAILABLE_TEXT, abort_application=dialogue.unit > 1
            )

    def _arm(self, dialogue: Dialogue, seconds: float) -> None:
        # cancel + callLater, not DelayedCall.reset: moving a call sooner is a linear scan
        # of the reactor's timer heap, and thousands of dialogues run at once.
        cancel(dialogue.step_timer)
        dialogue.step_timer = self._clock.callLater(seconds, self._step_expired, dialogue)

    def _step_expired(self, dialogue: Dialogue) -> None:
        if dialogue.state is DialogueState.AWAITING_APPLICATION:
            self._end(dialogue, NETWORK_ERROR, UNAVAILABLE_TEXT, abort_application=True)
        elif dialogue.state is DialogueState.AWAITING_SUBSCRIBER:
            self._end(dialogue, TIMEOUT, TIMEOUT_TEXT, abort_application=True)

    def _life_expired(self, dialogue: Dialogue) -> None:
        if dialogue.state is not DialogueState.ENDED:
            self._end(dialogue, TIMEOUT, TIMEOUT_TEXT, abort_application=True)

    def _end(
        self,
        dialogue: Dialogue,
        reason: str,
        text: str,
        *,
        abort_application: bool = False,
        data_coding: int | None = None,
    ) -> None:
        dialogue.move(DialogueState.ENDED)
        cancel(dialogue.step_timer)
        cancel(dialogue.life_timer)
        dialogue.step_timer = dialogue.life_timer = None
        msisdn = dialogue.handset.msisdn
        if self._live.get(msisdn) is dialogue:
            del self._live[msisdn]
        if dialogue.session_id is not None:
            if self._umr_live.get(dialogue.session_id) is dialogue:
                del self._umr_live[dialogue.session_id]
            self._remember_ended(dialogue)
        if abort_application:
            abort = self._mo_pdu(dialogue, UssdAction.ABORT, "")
            self._links.deliver(dialogue.route.system_id, abort, _ignore)
        screen = Screen(text, False, dialogue.network_initiated, reason, data_coding)
        dialogue.handset.show(screen, HandsetState.IDLE)

    def end_all(self, reason: str = NETWORK_ERROR) -> int:
        """End every live dialogue (the SMSC restarts); the applications are not told."""
        dialogues = list(self._live.values())
        for dialogue in dialogues:
            self._end(dialogue, reason, UNAVAILABLE_TEXT)
        return len(dialogues)

    # --- session ids --------------------------------------------------------------------------

    def _allocate(self, dialect: Dialect, msisdn: str) -> int | None:
        if dialect.session_key is SessionKey.ITS_SESSION_INFO:
            number = self._its_next.get(msisdn, 0)
            self._its_next[msisdn] = (number + 1) % 256
            return number  # the MSISDN has no other live dialogue: unique among them
        if dialect.session_key is SessionKey.USER_MESSAGE_REFERENCE:
            for _ in range(0x10000):
                reference = self._umr_next
                self._umr_next = (reference + 1) & 0xFFFF
                if reference not in self._umr_live:
                    return reference
        return None  # MSISDN-only dialect, or every reference is in use

    def _remember_ended(self, dialogue: Dialogue) -> None:
        self._recent[dialogue.key] = self._clock.seconds() + dialogue.route.dialect.dialogue_timeout
        self._recent.move_to_end(dialogue.key)
        if len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)

    def _recently_ended(self, key: DialogueKey) -> bool:
        now = self._clock.seconds()
        while self._recent:
            oldest, expiry = next(iter(self._recent.items()))
            if expiry > now:
                break
            del self._recent[oldest]
        return key in self._recent

    # --- units ---------------------------------------------------------------------------------

    def _mo_pdu(self, dialogue: Dialogue, action: UssdAction, text: str) -> Pdu:
        message = UssdMessage(
            action=action,
            msisdn=dialogue.handset.msisdn,
            service_code=dialogue.route.short_code,
            text=text,
            session_id=dialogue.session_id,
        )
        try:
            return build_mobile_originated(dialogue.route.dialect, message, 0)
        except TextCodingError as error:
            raise InvalidInput(str(error)) from None


def _ignore(status: int | None) -> None:
    """Delivery result of an ABORT: the dialogue is over whatever the answer."""
