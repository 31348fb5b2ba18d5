"""Acceptance: the gateway survives a simulator restart, missing enquire_link responses,
throttling, a burst beyond its window, and random bytes on the link."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from twisted.internet.threads import deferToThread

from gateway.smpp.constants import CommandId, CommandStatus
from gateway.smpp.pdu import Pdu, PduError, PduStream, decode, encode, request
from simulators.modem.network import MobileNetwork
from tests.e2e.carrier import carrier_network
from tests.support import asyncio_test, until
from ussdloop.aio import wait_deferred

WALK = ["1", "Amani", "42", "2"]


async def five_screens(network: MobileNetwork, msisdn: str, code: str = "*123#") -> str:
    handset = network.handset(msisdn)
    screen = await handset.dial(code, timeout=10)
    assert screen.expects_reply, screen
    for answer in WALK:
        screen = await handset.reply(answer, timeout=10)
    assert not screen.expects_reply
    return screen.text


@asyncio_test
async def test_the_gateway_rebinds_after_a_simulator_restart_mid_dialogue() -> None:
    async with carrier_network() as carrier:
        gateway = carrier.gateways["dfsp1"]
        handset = carrier.simulator.network.handset("256700000021")
        first = await handset.dial("*123#")
        assert first.expects_reply
        binds = gateway.link.stats.binds  # type: ignore[attr-defined]

        await carrier.simulator.restart()

        assert handset.screen is not None and handset.screen.ended_reason == "network_error"
        await until(lambda: gateway.link.stats.binds > binds and gateway.link.bound)  # type: ignore[attr-defined]
        assert await five_screens(carrier.simulator.network, "256700000021") == "Done: Amani 42"


@asyncio_test
async def test_missing_enquire_link_responses_make_the_gateway_rebind() -> None:
    async with carrier_network(enquire_link_interval=0.2, response_timeout=0.3) as carrier:
        gateway = carrier.gateways["dfsp1"]
        stats = gateway.link.stats  # type: ignore[attr-defined]
        binds = stats.binds
        carrier.simulator.faults.ignore_enquire_link = True
        await until(lambda: stats.binds > binds, timeout=5)
        carrier.simulator.faults.ignore_enquire_link = False
        await until(lambda: gateway.link.bound)
        assert stats.enquire_links_sent >= 1
        assert await five_screens(carrier.simulator.network, "256700000022") == "Done: Amani 42"


@asyncio_test
async def test_throttling_makes_the_gateway_back_off_and_loses_no_pdu() -> None:
    async with carrier_network() as carrier:
        gateway = carrier.gateways["dfsp1"]
        carrier.simulator.faults.throttle_count = 6
        phones = [f"2567000001{n:02d}" for n in range(4)]
        finals = await asyncio.gather(
            *(five_screens(carrier.simulator.network, msisdn) for msisdn in phones)
        )
        assert finals == ["Done: Amani 42"] * len(phones)
        assert gateway.link.stats.throttled >= 6  # type: ignore[attr-defined]
        assert gateway.counters.screens_sent == 5 * len(phones)


@asyncio_test
async def test_a_burst_beyond_the_window_queues_and_never_exceeds_it() -> None:
    async with carrier_network(window=4) as carrier:
        gateway = carrier.gateways["dfsp1"]
        carrier.simulator.faults.delay = 0.05  # slow answers keep the window full
        phones = [f"2567000002{n:02d}" for n in range(40)]
        screens = await asyncio.gather(
            *(carrier.simulator.network.handset(p).dial("*123#", timeout=10) for p in phones)
        )
        assert all(s.text.startswith("Welcome to ussdloop demo") for s in screens)
        assert gateway.link.stats.max_in_flight == 4  # type: ignore[attr-defined]


def random_frames(rng: random.Random, count: int) -> list[bytes]:
    """Random PDUs with a well-formed length: random command ids, statuses and bodies
    (never an unbind, which would end the link by the book)."""
    commands = [c.value for c in CommandId if c is not CommandId.UNBIND]
    frames = []
    for _ in range(count):
        body = rng.randbytes(rng.randrange(0, 80))
        command = rng.choice([rng.getrandbits(32), *commands])
        header = struct.pack(
            ">IIII", 16 + len(body), command, rng.getrandbits(32), rng.getrandbits(31)
        )
        frames.append(header + body)
    return frames


@asyncio_test
async def test_ten_thousand_random_pdus_do_not_break_the_gateways_link() -> None:
    async with carrier_network() as carrier:
        gateway = carrier.gateways["dfsp1"]
        stats = gateway.link.stats  # type: ignore[attr-defined]
        binds = stats.binds
        frames = random_frames(random.Random(1383), 10_000)
        carrier.simulator.inject_raw("dfsp1", b"".join(frames))
        # The link either kept the connection or closed it cleanly and rebound.
        await until(lambda: gateway.link.bound, timeout=10)
        assert stats.binds == binds  # no unbind among them: the connection was kept
        assert await five_screens(carrier.simulator.network, "256700000023") == "Done: Amani 42"


def _fuzz_the_simulator(port: int, frames: list[bytes]) -> tuple[int, Pdu]:
    """Bind as dfsp1, send the frames, then an enquire_link; count the answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        bind = request(CommandId.BIND_TRANSCEIVER, 1, system_id="dfsp1", password="dfsp1pw")
        sock.sendall(encode(bind))
        stream = PduStream()
        answers: list[Pdu | PduError] = []
        while not answers:
            answers += stream.feed(sock.recv(4096))
        assert isinstance(answers[0], Pdu) and answers[0].status_ok
        for frame in frames:
            sock.sendall(frame)
        sock.sendall(encode(request(CommandId.ENQUIRE_LINK, 0x7FFFFFF0)))
        replies = 0
        while True:
            for item in stream.feed(sock.recv(65536)):
                replies += 1
                if isinstance(item, Pdu) and item.sequence_number == 0x7FFFFFF0:
                    return replies, item


@asyncio_test
async def test_ten_thousand_random_pdus_to_the_simulator_are_answered_and_the_link_kept() -> None:
    async with carrier_network() as carrier:
        frames = random_frames(random.Random(501), 10_000)
        replies, last = await wait_deferred(
            deferToThread(_fuzz_the_simulator, carrier.simulator.smpp_port, frames)
        )
        assert last.command_id is CommandId.ENQUIRE_LINK_RESP
        assert last.command_status == CommandStatus.ESME_ROK
        assert replies >= len(frames) // 2  # every request among them got an answer


def test_ten_thousand_random_byte_strings_never_crash_the_decoder() -> None:
    rng = random.Random(7)
    for _ in range(10_000):
        data = rng.randbytes(rng.randrange(0, 200))
        try:
            decode(data)
        except PduError as error:
            assert isinstance(error.status, CommandStatus)
