"""``ussdloop phone``: the terminal phone against a real control API and simulator.

The phone's HTTP calls block (urllib), so it runs in a thread (``deferToThread``) while
the reactor serves the control API and the simulator.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from twisted.internet import reactor as global_reactor
from twisted.internet.threads import blockingCallFromThread, deferToThread

from simulators.modem.control_api import ControlServer
from simulators.modem.phone_cli import main
from tests.support import asyncio_test
from tests.unit.simulators.echo_esme import (
    BALANCE,
    WELCOME,
    EchoNetwork,
    echo_network,
)
from ussdloop.aio import as_deferred, wait_deferred

MSISDN = "256700000001"


@dataclass
class Terminal:
    network: EchoNetwork
    url: str

    async def run(self, typed: str, *argv: str) -> tuple[int, str]:
        """Run the phone on ``typed`` as its input; its exit code and everything it wrote."""
        out = io.StringIO()
        args = ["--msisdn", MSISDN, "--control", self.url, *argv]
        code = await wait_deferred(deferToThread(main, args, stdin=io.StringIO(typed), stdout=out))
        return code, out.getvalue()


@asynccontextmanager
async def terminal() -> AsyncIterator[Terminal]:
    async with echo_network() as network:
        server = ControlServer(network.simulator, "127.0.0.1", 0)
        await server.start()
        try:
            yield Terminal(network, f"http://127.0.0.1:{server.port}")
        finally:
            await server.stop()


@asyncio_test
async def test_a_dialogue_typed_in_the_terminal_shows_each_screen() -> None:
    async with terminal() as phone:
        code, shown = await phone.run("*123#\n1\n/quit\nnever read\n")
        assert code == 0
        assert shown.index(WELCOME) < shown.index("(answer, or /cancel)") < shown.index(BALANCE)
        assert shown.rstrip().endswith("(dialogue ended)")
        assert phone.network.simulator.network.handset(MSISDN).state.value == "idle"


@asyncio_test
async def test_end_of_input_leaves_the_phone() -> None:
    async with terminal() as phone:
        code, shown = await phone.run("")
        assert code == 0 and f"Phone {MSISDN}" in shown


@asyncio_test
async def test_sms_lists_the_inbox() -> None:
    async with terminal() as phone:
        _, shown = await phone.run("/sms\n")
        assert "no messages" in shown
        await phone.network.esme.send_sms(MSISDN, "You received 5.00 USD")
        _, shown = await phone.run("/sms\n")
        assert "[1] from 123 at " in shown and "You received 5.00 USD" in shown


@asyncio_test
async def test_cancel_ends_the_dialogue_and_errors_are_shown_not_fatal() -> None:
    async with terminal() as phone:
        code, shown = await phone.run("*123#\n/cancel\n/cancel\n/nonsense\n")
        assert code == 0
        assert "(dialogue ended: aborted)" in shown
        assert "(NoDialogue)" in shown
        assert "unknown command /nonsense" in shown


@asyncio_test
async def test_a_prompt_pushed_before_the_phone_starts_is_shown_and_answered() -> None:
    async with terminal() as phone:
        await phone.network.esme.push(MSISDN, "Pay 5.00 USD to shop?\n1. Yes\n0. No")
        _, shown = await phone.run("0\n")
        assert shown.index("Pay 5.00 USD to shop?") < shown.index("Goodbye")


class ScriptedInput(io.StringIO):
    """Input lines, with an action run on the reactor (from the phone's thread) before
    the line at ``before_line`` is read."""

    def __init__(self, text: str, before_line: int, action: Callable[[], object]) -> None:
        super().__init__(text)
        self._reads = 0
        self._before_line = before_line
        self._action = action

    def readline(self, size: int = -1, /) -> str:  # type: ignore[override]
        if self._reads == self._before_line:
            blockingCallFromThread(global_reactor, self._action)
        self._reads += 1
        return super().readline(size)


@asyncio_test
async def test_a_prompt_pushed_while_typing_is_shown_before_the_input_is_sent() -> None:
    async with terminal() as phone:
        esme = phone.network.esme

        def push() -> object:
            return as_deferred(esme.push(MSISDN, "Pay 5.00 USD to shop?\n1. Yes\n0. No"))

        typed = ScriptedInput("1\n0\n", before_line=0, action=push)
        out = io.StringIO()
        args = ["--msisdn", MSISDN, "--control", phone.url]
        await wait_deferred(deferToThread(main, args, stdin=typed, stdout=out))
        shown = out.getvalue()
        assert "A new screen arrived; your input was not sent:" in shown
        assert shown.count("Pay 5.00 USD to shop?") == 1
        assert "Goodbye" in shown  # "0" answered the prompt; the "1" was never sent
        assert [m.text for m in esme.received] == ["0"]


@asyncio_test
async def test_an_empty_line_shows_the_current_screen() -> None:
    async with terminal() as phone:
        await phone.run("*123#\n")
        _, shown = await phone.run("\n")
        assert WELCOME in shown


@asyncio_test
async def test_a_bad_msisdn_is_reported_and_the_phone_does_not_start() -> None:
    async with terminal() as phone:
        out = io.StringIO()
        args = ["--msisdn", "12", "--control", phone.url]
        code = await wait_deferred(deferToThread(main, args, stdin=io.StringIO(""), stdout=out))
        assert code == 1 and "(BadRequest)" in out.getvalue()


def test_an_unreachable_control_api_is_reported() -> None:
    out = io.StringIO()
    code = main(["--msisdn", MSISDN, "--control", "http://127.0.0.1:9"], stdout=out)
    assert code == 1 and "(Unreachable)" in out.getvalue()


def test_a_silly_timeout_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--msisdn", MSISDN, "--timeout", "0"], stdout=io.StringIO())
