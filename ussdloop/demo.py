"""``ussdloop demo``: start the network on free ports and play stories from handsets.

Every screen travels handset -> simulator -> SMPP -> gateway -> menu and back, and is
printed as the phone shows it. The run exits 0 only if every story ended as expected,
and names the story and the screen that did not otherwise.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from typing import TextIO

from simulators.modem.handsets import Screen
from simulators.modem.network import MobileNetwork
from ussdloop.aio import wait_deferred
from ussdloop.compose import start_network
from ussdloop.config import NetworkConfig


@dataclass(frozen=True)
class Step:
    send: str  # the dial string first, then the answers
    expect: str  # text the screen must contain


@dataclass(frozen=True)
class Story:
    title: str
    msisdn: str
    steps: tuple[Step, ...]


def stories(network: NetworkConfig) -> list[Story]:
    codes = [f"*{dfsp.short_code}#" for dfsp in network.dfsps.values()]
    first, second = codes[0], codes[-1]
    return [
        Story(
            f"Amani walks the demo menu on {first} in English (GSM 7-bit screens)",
            "256700000001",
            (
                Step(first, "Welcome to ussdloop demo"),
                Step("1", "Enter your name:"),
                Step("Amani", "Enter a number from 1 to 99:"),
                Step("42", "Send 42 to Amani?"),
                Step("2", "Done: Amani 42"),
            ),
        ),
        Story(
            f"Zoë switches to French on {second} (UCS-2 screens, 80 characters)",
            "256700000002",
            (
                Step(second, "Welcome to ussdloop demo"),
                Step("3", "1. English"),
                Step("2", "Bienvenue dans la démo ussdloop"),
                Step("1", "Entrez votre prénom"),
                Step("Zoë", "Entrez un nombre de 1 à 99"),
                Step("7", "Envoyer 7 à Zoë ?"),
                Step("2", "Reçu : Zoë 7"),
            ),
        ),
        Story(
            f"Juma pages through a long list on {first} with 98. More",
            "256700000003",
            (
                Step(first, "Welcome to ussdloop demo"),
                Step("2", "98. More"),
                Step("98", "98. More"),
                Step("12", "12 x 12 = 144"),
            ),
        ),
    ]


async def play_demo(network: NetworkConfig, out: TextIO = sys.stdout) -> int:
    """The network on free ports, its DFSP databases in a fresh temporary directory
    (removed afterwards: the demo never touches ``./var``)."""
    with tempfile.TemporaryDirectory(prefix="ussdloop-demo-") as data_dir:
        return await _play_demo(network, out, data_dir)


async def _play_demo(network: NetworkConfig, out: TextIO, data_dir: str) -> int:
    carrier = await start_network(network, any_port=True, data_dir=data_dir)
    try:
        for gateway in carrier.gateways.values():
            await wait_deferred(gateway.link.when_bound())  # type: ignore[attr-defined]
        print("Network up on free ports:", file=out)
        for endpoint in carrier.running.endpoints:
            print(f"  {endpoint}", file=out)
        failures = 0
        for story in stories(network):
            failures += not await play(carrier.simulator.network, story, out)
        verdict = "all stories ended as expected" if not failures else f"{failures} failed"
        print(f"\nDemo: {verdict}.", file=out, flush=True)
        return 1 if failures else 0
    finally:
        await carrier.running.stop()


async def play(network: MobileNetwork, story: Story, out: TextIO) -> bool:
    print(f"\n== {story.title}\n   phone {story.msisdn}", file=out, flush=True)
    handset = network.handset(story.msisdn)
    for number, step in enumerate(story.steps, 1):
        if number == 1:
            screen = await handset.dial(step.send)
        else:
            screen = await handset.reply(step.send)
        _show(out, step.send, screen)
        if step.expect not in screen.text:
            print(
                f"   FAILED at screen {number}: expected {step.expect!r}, got {screen.text!r}",
                file=out,
                flush=True,
            )
            if screen.expects_reply:
                await handset.cancel()
            return False
    return True


def _show(out: TextIO, sent: str, screen: Screen) -> None:
    print(f"   > {sent}", file=out)
    for line in screen.text.splitlines() or [""]:
        print(f"   | {line}", file=out)
    if not screen.expects_reply:
        print(f"   (dialogue ended: {screen.ended_reason or 'released'})", file=out)
    out.flush()
