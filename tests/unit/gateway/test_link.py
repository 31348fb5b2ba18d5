"""The sans-I/O link model: window, FIFO queue, throttling, rate, deadlines, numbers, states."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.constants import CommandId, CommandStatus
from gateway.smpp.link import (
    MAX_SEQUENCE,
    TRANSITIONS,
    Backoff,
    ConnectionState,
    Outbound,
    OutboundLimits,
    QueueFull,
    Request,
    SequenceNumbers,
    TokenBucket,
    check_transition,
    error_answer,
)
from gateway.smpp.pdu import Pdu, PduError, decode, request

OK = CommandStatus.ESME_ROK
THROTTLED = CommandStatus.ESME_RTHROTTLED


def outbound(
    window: int = 2,
    queue_limit: int = 100,
    rate_limit: float | None = None,
    pause: float = 1.0,
    pause_max: float = 8.0,
) -> Outbound:
    limits = OutboundLimits(
        window=window,
        queue_limit=queue_limit,
        response_timeout=10.0,
        throttle_pause=pause,
        throttle_pause_max=pause_max,
        rate_limit=rate_limit,
    )
    link = Outbound(limits, SequenceNumbers())
    link.open()
    return link


def submit(text: str) -> Pdu:
    return request(CommandId.SUBMIT_SM, 0, short_message=text.encode())


def text(sent: Request) -> str:
    return str(decode(sent.wire())["short_message"].decode())


def answer(sent: Request, status: int = OK) -> Pdu:
    return Pdu(CommandId.SUBMIT_SM_RESP, sent.sequence_number, status)


# --- sequence numbers ------------------------------------------------------------------


def test_sequence_numbers_count_up_from_one() -> None:
    numbers = SequenceNumbers()
    assert [numbers.allocate() for _ in range(3)] == [1, 2, 3]


def test_sequence_numbers_wrap_from_0x7fffffff_back_to_one() -> None:
    numbers = SequenceNumbers(start=MAX_SEQUENCE - 1)
    assert [numbers.allocate() for _ in range(3)] == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 1]


def test_sequence_numbers_skip_those_still_outstanding_when_the_counter_comes_round() -> None:
    numbers = SequenceNumbers(start=MAX_SEQUENCE)
    assert numbers.allocate() == MAX_SEQUENCE
    held = numbers.allocate()  # 1, never answered
    numbers._next = held  # as after 2**31 - 2 more requests: the counter is back at 1
    assert numbers.allocate() == 2
    numbers.release(held)
    numbers._next = held
    assert numbers.allocate() == 1


@given(st.lists(st.booleans(), max_size=300), st.integers(1, MAX_SEQUENCE))
def test_no_sequence_number_is_handed_out_twice_while_outstanding(
    ops: list[bool], start: int
) -> None:
    numbers = SequenceNumbers(start)
    outstanding: list[int] = []
    for allocate in ops:
        if allocate or not outstanding:
            number = numbers.allocate()
            assert 1 <= number <= MAX_SEQUENCE and number not in outstanding
            outstanding.append(number)
        else:
            numbers.release(outstanding.pop(0))


# --- rate and back-off -------------------------------------------------------------------


def test_the_token_bucket_spaces_sends_and_banks_no_burst() -> None:
    bucket = TokenBucket(rate=4.0)
    assert bucket.try_take(0.0) and not bucket.try_take(0.2)
    assert bucket.available_at() == 0.25 and bucket.try_take(0.25)
    assert bucket.try_take(10.0)  # idle for long
    assert not bucket.try_take(10.1)  # but no burst saved up


def test_back_off_doubles_from_initial_up_to_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.0)
    rng = random.Random(1)
    assert [backoff.delay(n, rng) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(10_000, rng) == 60


@given(st.integers(0, 100), st.integers(0, 2**32))
def test_back_off_jitter_stays_within_its_fraction(attempt: int, seed: int) -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.25)
    base = min(2.0**attempt, 60.0)
    assert base * 0.75 <= backoff.delay(attempt, random.Random(seed)) <= base * 1.25


# --- window and queue --------------------------------------------------------------------


def test_requests_go_out_in_order_no_more_than_the_window() -> None:
    link = outbound(window=2)
    for name in "ABCD":
        link.accept(submit(name))
    first = link.take_sendable(0.0)
    assert [text(r) for r in first] == ["A", "B"] and link.take_sendable(0.0) == []
    assert link.on_response(answer(first[1]), 0.0) is not None
    assert [text(r) for r in link.take_sendable(0.0)] == ["C"]
    assert (link.in_flight, link.waiting) == (2, 1)


def test_the_wire_form_carries_the_assigned_sequence_number() -> None:
    link = outbound()
    link.accept(submit("A"))
    (sent,) = link.take_sendable(0.0)
    wire = decode(sent.wire())
    assert wire.sequence_number == sent.sequence_number == 1
    assert wire.command_id is CommandId.SUBMIT_SM


def test_nothing_is_sent_while_the_link_is_not_open() -> None:
    link = outbound()
    link.hold()
    link.accept(submit("A"))
    assert link.take_sendable(0.0) == [] and link.next_wakeup() is None
    link.open()
    assert len(link.take_sendable(0.0)) == 1


def test_the_queue_is_bounded() -> None:
    link = outbound(window=1, queue_limit=2)
    link.hold()
    link.accept(submit("A"))
    link.accept(submit("B"))
    with pytest.raises(QueueFull):
        link.accept(submit("C"))


def test_a_pdu_that_cannot_be_encoded_is_refused_on_acceptance() -> None:
    link = outbound()
    with pytest.raises(ValueError):
        link.accept(request(CommandId.SUBMIT_SM, 0, short_message=b"x" * 300))
    with pytest.raises(ValueError):
        link.accept(request(CommandId.BIND_TRANSCEIVER, 0))
    assert link.waiting == 0


def test_an_unknown_response_matches_nothing() -> None:
    link = outbound()
    assert link.on_response(Pdu(CommandId.SUBMIT_SM_RESP, 99), 0.0) is None


def test_a_request_past_its_deadline_expires_and_frees_its_slot() -> None:
    link = outbound(window=1)
    link.accept(submit("A"))
    link.accept(submit("B"))
    (sent,) = link.take_sendable(0.0)
    assert link.next_wakeup() == 10.0
    assert link.expire(9.99) == []
    assert link.expire(10.0) == [sent]
    assert [text(r) for r in link.take_sendable(10.0)] == ["B"]
    assert link.on_response(answer(sent), 10.0) is None  # a late answer is ignored


def test_closing_hands_back_the_in_flight_and_keeps_the_queued() -> None:
    link = outbound(window=1)
    link.accept(submit("A"))
    link.accept(submit("B"))
    (sent,) = link.take_sendable(0.0)
    assert link.close() == [sent]
    assert (link.in_flight, link.waiting) == (0, 1)
    link.open()
    assert [text(r) for r in link.take_sendable(1.0)] == ["B"]


def test_withdrawing_a_waiting_request_and_draining() -> None:
    link = outbound(window=1)
    a, b, c = (link.accept(submit(name)) for name in "ABC")
    link.take_sendable(0.0)
    assert not link.withdraw(a)  # already sent
    assert link.withdraw(b)
    assert link.drain() == [c] and link.waiting == 0


# --- throttling ------------------------------------------------------------------------------


def test_a_throttled_request_goes_back_first_and_the_link_pauses() -> None:
    link = outbound(window=1, pause=1.0)
    link.accept(submit("A"))
    link.accept(submit("B"))
    (a,) = link.take_sendable(0.0)
    outcome = link.on_response(answer(a, THROTTLED), 0.5)
    assert outcome is not None and not outcome.final
    assert link.paused(1.4) and link.take_sendable(1.4) == []
    assert link.next_wakeup() == 1.5
    (again,) = link.take_sendable(1.5)
    assert again is a and text(again) == "A" and again.sends == 2


def test_throttles_from_requests_sent_before_the_pause_do_not_extend_it() -> None:
    link = outbound(window=3, pause=1.0)
    for name in "ABCD":
        link.accept(submit(name))
    a, b, c = link.take_sendable(0.0)
    link.on_response(answer(a, THROTTLED), 0.0)
    link.on_response(answer(c, CommandStatus.ESME_RMSGQFUL), 0.5)
    assert not link.paused(1.0)
    assert [text(r) for r in link.take_sendable(1.0)] == ["A", "C"]  # window: B still out
    link.on_response(answer(b), 1.0)
    assert [text(r) for r in link.take_sendable(1.0)] == ["D"]


def test_the_pause_doubles_while_throttling_repeats_and_resets_after_a_success() -> None:
    link = outbound(window=1, pause=1.0, pause_max=3.0)
    link.accept(submit("A"))
    now, pauses = 0.0, []
    for _ in range(4):
        (sent,) = link.take_sendable(now)
        link.on_response(answer(sent, THROTTLED), now)
        wake = link.next_wakeup()
        assert wake is not None
        pauses.append(wake - now)
        now = wake
    assert pauses == [1.0, 2.0, 3.0, 3.0]
    (sent,) = link.take_sendable(now)
    link.on_response(answer(sent), now)
    link.accept(submit("B"))
    (sent,) = link.take_sendable(now)
    link.on_response(answer(sent, THROTTLED), now)
    assert link.next_wakeup() == now + 1.0


def test_the_rate_limit_gates_sends_and_sets_the_wakeup() -> None:
    link = outbound(window=10, rate_limit=2.0)
    for name in "ABC":
        link.accept(submit(name))
    assert len(link.take_sendable(0.0)) == 1
    assert link.next_wakeup() == 0.5
    assert len(link.take_sendable(0.5)) == 1 and len(link.take_sendable(0.6)) == 0


@dataclass
class Smsc:
    """A model SMSC for the property test: throttles at will, answers in any order."""

    answered: list[str] = field(default_factory=list)
    first_sends: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


@given(
    window=st.integers(1, 4),
    steps=st.lists(
        st.tuples(st.sampled_from(["accept", "ok", "throttle", "tick"]), st.integers()),
        max_size=120,
    ),
)
def test_throttling_never_loses_duplicates_or_reorders_first_sends(
    window: int, steps: list[tuple[str, int]]
) -> None:
    link, smsc, now, names = outbound(window=window, pause=1.0), Smsc(), 0.0, iter(range(10**6))
    in_flight: list[Request] = []

    def pump() -> None:
        for sent in link.take_sendable(now):
            name = text(sent)
            if name not in smsc.seen:
                smsc.seen.add(name)
                smsc.first_sends.append(name)
            in_flight.append(sent)
        assert link.in_flight <= window

    def respond(index: int, status: int) -> None:
        sent = in_flight.pop(index % len(in_flight))
        outcome = link.on_response(answer(sent, status), now)
        assert outcome is not None and outcome.final == (status == OK)
        if outcome.final:
            smsc.answered.append(text(sent))

    accepted: list[str] = []
    for action, value in steps:
        if action == "accept":
            accepted.append(f"{next(names):06d}")
            link.accept(submit(accepted[-1]))
        elif action == "tick":
            now += 0.5
        elif in_flight:
            respond(value, OK if action == "ok" else THROTTLED)
        pump()
    while in_flight or link.waiting:  # drain: the SMSC stops throttling
        now += 1.0
        pump()
        while in_flight:
            respond(0, OK)
            pump()
    assert sorted(smsc.answered) == accepted  # each answered exactly once, none lost
    assert smsc.first_sends == accepted  # first sends in acceptance order
    if window == 1:
        assert smsc.answered == accepted  # one at a time: nothing overtakes anything


# --- connection states and error answers ----------------------------------------------------


def test_connection_states_only_move_along_the_table() -> None:
    S = ConnectionState
    assert check_transition(S.CONNECTED, S.BINDING) is S.BINDING
    assert check_transition(S.BINDING, S.BOUND) is S.BOUND
    with pytest.raises(AssertionError):
        check_transition(S.BOUND, S.BINDING)
    with pytest.raises(AssertionError):
        check_transition(S.CLOSED, S.CONNECTED)
    assert all(S.CLOSED in TRANSITIONS[s] for s in S if s is not S.CLOSED)
    assert TRANSITIONS[S.CLOSED] == frozenset()


def test_an_undecodable_request_gets_its_own_response_with_the_error_status() -> None:
    error = PduError(
        CommandStatus.ESME_RINVMSGLEN, "short", command_id=CommandId.DELIVER_SM, sequence_number=4
    )
    answer_ = error_answer(error)
    assert (answer_.command_id, answer_.sequence_number) == (CommandId.DELIVER_SM_RESP, 4)
    assert answer_.command_status == CommandStatus.ESME_RINVMSGLEN


@pytest.mark.parametrize(
    ("command_id", "fatal"),
    [
        (0x00000099, False),
        (CommandId.SUBMIT_SM_RESP, False),
        (CommandId.DELIVER_SM, True),
        (0, True),
    ],
)
def test_other_undecodable_pdus_get_generic_nack(command_id: int, fatal: bool) -> None:
    error = PduError(
        CommandStatus.ESME_RINVCMDID, "bad", command_id=command_id, sequence_number=6, fatal=fatal
    )
    nack = error_answer(error)
    assert (nack.command_id, nack.sequence_number) == (CommandId.GENERIC_NACK, 6)
    assert nack.command_status == CommandStatus.ESME_RINVCMDID
