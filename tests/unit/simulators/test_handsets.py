"""Virtual handsets: the subscriber's actions, what they wait for, and their events.

The handset is tested against a scripted switch (the USSD centre's side) and a
``task.Clock``; its coroutines run on the reactor's asyncio loop.
"""

from __future__ import annotations

import asyncio

import pytest
from twisted.internet.task import Clock

from simulators.modem.handsets import (
    Handset,
    HandsetBusy,
    HandsetEvent,
    HandsetState,
    NoDialogue,
    Screen,
    Sms,
    SmsEvent,
    UssdScreenEvent,
    normalise_msisdn,
)
from tests.support import asyncio_test

MENU = Screen("1. Send\n2. Balance", expects_reply=True)


class ScriptedSwitch:
    """The network side: records what the handset asked for, answers when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.answer_at_once: Screen | None = None

    def originate(self, handset: Handset, code: str) -> None:
        self.calls.append(("originate", code))
        if self.answer_at_once is not None:
            handset.show(self.answer_at_once, HandsetState.IDLE)
        else:
            handset.await_network()

    def answer(self, handset: Handset, text: str) -> None:
        self.calls.append(("answer", text))
        handset.await_network()

    def release(self, handset: Handset) -> None:
        self.calls.append(("release",))
        handset.show(Screen("", False, ended_reason="aborted"), HandsetState.IDLE)

    def give_up(self, handset: Handset) -> None:
        self.calls.append(("give_up",))
        handset.show(Screen("timed out", False, ended_reason="timeout"), HandsetState.IDLE)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def phone() -> tuple[Handset, ScriptedSwitch, Clock]:
    switch, clock = ScriptedSwitch(), Clock()
    return Handset("256700000001", switch, clock), switch, clock


@asyncio_test
async def test_dial_returns_the_first_screen_and_reply_the_next() -> None:
    handset, switch, _ = phone()
    dialling = asyncio.ensure_future(handset.dial("*123#"))
    await settle()
    assert switch.calls == [("originate", "*123#")] and not dialling.done()
    assert handset.state is HandsetState.WAITING
    handset.show(MENU, HandsetState.OPEN)
    assert await dialling == MENU and handset.state is HandsetState.OPEN

    replying = asyncio.ensure_future(handset.reply("2"))
    await settle()
    assert switch.calls[-1] == ("answer", "2")
    handset.show(Screen("Balance: 5", False, ended_reason="released"), HandsetState.IDLE)
    assert (await replying).ended_reason == "released"


@asyncio_test
async def test_dial_returns_at_once_when_the_network_refuses_the_code() -> None:
    handset, switch, _ = phone()
    switch.answer_at_once = Screen("Invalid MMI code", False, ended_reason="network_error")
    assert await handset.dial("*999#") == switch.answer_at_once


@asyncio_test
async def test_a_wait_past_its_timeout_gives_up_the_dialogue() -> None:
    handset, switch, clock = phone()
    dialling = asyncio.ensure_future(handset.dial("*123#", timeout=5))
    await settle()
    clock.advance(4.9)
    await settle()
    assert not dialling.done()
    clock.advance(0.1)
    screen = await dialling
    assert screen.ended_reason == "timeout" and switch.calls[-1] == ("give_up",)
    assert handset.state is HandsetState.IDLE


@asyncio_test
async def test_an_answer_in_time_cancels_the_timeout() -> None:
    handset, switch, clock = phone()
    dialling = asyncio.ensure_future(handset.dial("*123#", timeout=5))
    await settle()
    handset.show(MENU, HandsetState.OPEN)
    assert await dialling == MENU
    clock.advance(10)
    assert ("give_up",) not in switch.calls and clock.getDelayedCalls() == []


@asyncio_test
async def test_cancel_ends_the_dialogue() -> None:
    handset, switch, _ = phone()
    handset.dial_nowait("*123#")
    handset.show(MENU, HandsetState.OPEN)
    await handset.cancel()
    assert switch.calls[-1] == ("release",) and handset.state is HandsetState.IDLE
    with pytest.raises(NoDialogue):
        await handset.cancel()


@asyncio_test
async def test_actions_that_do_not_fit_the_state_are_refused() -> None:
    handset, _, _ = phone()
    with pytest.raises(NoDialogue):
        await handset.reply("1")
    handset.dial_nowait("*123#")
    with pytest.raises(HandsetBusy):
        await handset.dial("*123#")
    with pytest.raises(HandsetBusy):
        await handset.reply("1")


def test_every_screen_and_sms_is_announced_until_unsubscribed() -> None:
    handset, _, _ = phone()
    events: list[HandsetEvent] = []
    unsubscribe = handset.subscribe(events.append)
    handset.show(MENU, HandsetState.OPEN)  # unsolicited (network-initiated) screens too
    sms = Sms("1", "DFSP1", "hello", 0.0)
    assert handset.receive_sms(sms)
    assert events == [UssdScreenEvent(MENU), SmsEvent(sms, 0)]
    unsubscribe()
    handset.show(MENU, HandsetState.OPEN)
    assert len(events) == 2


def test_a_failing_listener_does_not_stop_the_others() -> None:
    handset, _, _ = phone()
    events: list[HandsetEvent] = []

    def broken(event: HandsetEvent) -> None:
        raise RuntimeError("listener bug")

    handset.subscribe(broken)
    handset.subscribe(events.append)
    handset.show(MENU, HandsetState.OPEN)
    assert events == [UssdScreenEvent(MENU)]


@pytest.mark.parametrize(
    ("given", "msisdn"),
    [("256700000001", "256700000001"), ("+256 700-000 001", "256700000001")],
)
def test_msisdns_are_normalised(given: str, msisdn: str) -> None:
    assert normalise_msisdn(given) == msisdn


@pytest.mark.parametrize("given", ["", "+", "alice", "1" * 21, "256 70O"])
def test_what_is_not_an_msisdn_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="MSISDN"):
        normalise_msisdn(given)
