"""``ussdloop demo``: start the network on free ports and play stories from handsets.

Every screen travels handset -> simulator -> SMPP -> gateway -> DFSP menu -> DFSP API
and back, and is printed as the phone shows it: customers open accounts, add a holder,
send money with the fee shown before the PIN, check a balance and a ministatement. The
run exits 0 only if every story ended as expected, and names the story and the screen
that did not otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import dataclass
from typing import TextIO

import aiohttp

from central.client import CentralHttp
from central.ledger.client import LedgerClient
from simulators.modem.handsets import Screen
from simulators.modem.network import MobileNetwork
from ussdloop.aio import wait_deferred
from ussdloop.compose import CarrierNetwork, start_network
from ussdloop.config import NetworkConfig
from ussdloop.money import Money


@dataclass(frozen=True)
class Step:
    send: str  # the dial string first, then the answers; "{name}" is a value kept earlier
    expect: str  # text the screen must contain
    keep: str = ""  # keep the screen's "User number: N" as this name for later steps


@dataclass(frozen=True)
class Story:
    title: str
    msisdn: str
    steps: tuple[Step, ...]
    show_sms: bool = False  # print the phone's SMS inbox at the end


PIN = "4071"
SMS_SETTLE = 0.5  # seconds to let notices arrive before a phone's inbox is shown


def _on_board(
    code: str, first: str, last: str, born: str, national_id: str, role: str = "1"
) -> tuple[Step, ...]:
    return (
        Step(code, "1. Open Account"),
        Step("1", "Enter your user number"),
        Step("1", "Enter first name"),
        Step(first, "Enter last name"),
        Step(last, "Enter date of birth"),
        Step(born, "Enter national id"),
        Step(national_id, "Enter account name:"),
        Step("main", "Choose role:"),
        Step(role, "Enter PIN:"),
        Step(PIN, "Account created!", keep=first.lower()),
        Step("0", f"Welcome {first} {last}!"),
    )


def stories(network: NetworkConfig) -> list[Story]:
    first, second = (f"*{dfsp.short_code}#" for dfsp in list(network.dfsps.values())[:2])
    return [
        Story(
            f"Amina opens an account on {first}",
            "256700000004",
            _on_board(first, "Amina", "Ruiz", "1984-03-09", "NI1004"),
        ),
        Story(
            f"Tadeo opens an account on {first} and adds his wife Amina as a signatory",
            "256700000003",
            (
                *_on_board(first, "Tadeo", "Ruiz", "1981-07-21", "NI1003"),
                Step("4", "Select which action you would like to take:"),
                Step("5", "Enter account holder identifier:"),
                Step("{amina}", "Add Amina Ruiz as account holder."),
                Step("2", "Enter PIN"),
                Step(PIN, "Amina Ruiz added as signatory account holder"),
                Step("0", "Welcome Tadeo Ruiz!"),
                Step("4", "Select which action"),
                Step("4", "Amina Ruiz (signatory)"),
            ),
        ),
        Story(
            f"Kani opens an account on {second}, at the other provider",
            "256700000002",
            _on_board(second, "Kani", "Moe", "1995-12-01", "NI1002"),
        ),
        Story(
            f"Hamim opens an account on {first} and sends Kani 25 USD across providers,"
            " the fees shown first",
            "256700000001",
            (
                *_on_board(first, "Hamim", "Ali", "1990-05-17", "NI1001"),
                Step("1", "Enter destination number"),
                Step("{kani}", "Destination name: Kani Moe"),
                Step("25", "Amount: 25 USD\nLocal fee: 1 USD\nScheme fee: 0.50 USD\nTotal: 26.50"),
                Step(PIN, "Status: executed"),
            ),
        ),
        Story(
            f"Shop One, a merchant, opens an account on {first}",
            "256700000005",
            _on_board(first, "Shop", "One", "1975-01-30", "NI1005", role="2"),
        ),
        Story(
            f"Venya opens an account on {second}",
            "256700000006",
            _on_board(second, "Venya", "Ndoro", "1992-08-14", "NI1006"),
        ),
        Story(
            f"Shop One invoices Venya 25 USD from {first}: her provider pushes it to her phone",
            "256700000005",
            (
                Step(first, "Welcome Shop One!"),
                Step("2", "To initiate the sale enter the user number of the buyer"),
                Step("{venya}", "Destination name: Venya Ndoro"),
                Step("25", "Invoice request sent!"),
            ),
        ),
        Story(
            f"Venya pays the invoice on {second}, the fees shown before her PIN",
            "256700000006",
            (
                Step(second, "Welcome Venya Ndoro!"),
                Step("3", "1. Incoming (1)"),
                Step("1", "1. Invoice from Shop One for 25 USD"),
                Step("1", "Scheme fee: 0.50 USD"),
                Step(PIN, "Invoice paid!"),
            ),
            show_sms=True,
        ),
        Story(
            f"Jahari opens an account on {second}",
            "256700000007",
            _on_board(second, "Jahari", "Odhiambo", "1988-02-11", "NI1007"),
        ),
        Story(
            f"Kani pays Jahari on {second} (the same provider: no scheme fee)",
            "256700000002",
            (
                Step(second, "Welcome Kani Moe!"),
                Step("1", "Enter destination number"),
                Step("{jahari}", "Destination name: Jahari Odhiambo"),
                Step("10", "Amount: 10 USD\nLocal fee: 1 USD\nTotal: 11 USD"),
                Step(PIN, "Status: executed"),
            ),
        ),
        Story(
            f"Jahari checks his balance and ministatement on {second}",
            "256700000007",
            (
                Step(second, "Welcome Jahari Odhiambo!"),
                Step("6", "Enter your PIN"),
                Step(PIN, "Balance: 1010 USD"),
                Step("0", "Welcome Jahari Odhiambo!"),
                Step("7", "Enter your PIN to confirm ministatement request."),
                Step(PIN, "Kani Moe;10.00;"),
            ),
            show_sms=True,
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
        kept: dict[str, str] = {}
        for story in stories(network):
            failures += not await play(carrier.simulator.network, story, out, kept)
        await print_books(carrier, out)
        verdict = "all stories ended as expected" if not failures else f"{failures} failed"
        print(f"\nDemo: {verdict}.", file=out, flush=True)
        return 1 if failures else 0
    finally:
        await carrier.running.stop()


async def play(network: MobileNetwork, story: Story, out: TextIO, kept: dict[str, str]) -> bool:
    """Play ``story``; ``kept`` holds the values steps keep (user numbers) across stories."""
    print(f"\n== {story.title}\n   phone {story.msisdn}", file=out, flush=True)
    handset = network.handset(story.msisdn)
    for number, step in enumerate(story.steps, 1):
        send = step.send.format_map(kept)
        if number == 1:
            screen = await handset.dial(send)
        else:
            screen = await handset.reply(send)
        _show(out, send, screen)
        if step.keep:
            kept[step.keep] = _user_number(screen.text)
        if step.expect not in screen.text:
            print(
                f"   FAILED at screen {number}: expected {step.expect!r}, got {screen.text!r}",
                file=out,
                flush=True,
            )
            if screen.expects_reply:
                await handset.cancel()
            return False
    if screen.expects_reply:  # the person hangs up on the last screen
        await handset.cancel()
    if story.show_sms:
        await asyncio.sleep(SMS_SETTLE)  # the notices travel on their own
        for sms in handset.sms:
            print(f"   SMS from {sms.sender}: {sms.text}", file=out)
    return True


def _user_number(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("User number: "):
            return line.removeprefix("User number: ").strip()
    return ""


def _show(out: TextIO, sent: str, screen: Screen) -> None:
    print(f"   > {sent}", file=out)
    for line in screen.text.splitlines() or [""]:
        print(f"   | {line}", file=out)
    if not screen.expects_reply:
        print(f"   (dialogue ended: {screen.ended_reason or 'released'})", file=out)
    out.flush()


async def print_books(carrier: CarrierNetwork, out: TextIO) -> None:
    """Every DFSP's ledger (each account and the total, which is always zero), the
    centre's positions, then a settlement window closed with its net amounts."""
    for name, dfsp in carrier.dfsps.items():
        assert dfsp.ledger is not None and dfsp.customers is not None
        print(f"\n== The books of {name}", file=out)
        total = Money.zero(dfsp.settings.currency)
        for account in await dfsp.ledger.accounts():
            owner = account.owner
            if account.kind.value in ("customer", "commission"):
                customer = await dfsp.customers.customer(owner)
                owner = f"{customer.first_name} {customer.last_name}"
            print(f"   {account.kind.value:<10} {owner:<22} {account.balance!s:>12}", file=out)
            total += account.balance
        print(f"   {'total':<33} {total!s:>12}  (every ledger sums to zero)", file=out)
    if carrier.central is None:
        return
    settings = carrier.central.settings
    async with aiohttp.ClientSession() as session:
        operator = CentralHttp(
            carrier.central.base_url, session, settings.operator_key, settings.operator_secret
        )
        ledger = LedgerClient(operator)
        print("\n== The centre's positions (executed, not yet settled)", file=out)
        for position in await ledger.positions():
            line = f"payments {position.payments!s:>9}  receipts {position.receipts!s:>9}"
            print(f"   {position.account:<14} {line}  net {position.net!s:>9}", file=out)
        settlement = await ledger.settle()
        print(f"\n== Settlement {settlement.id}: {settlement.transfers} transfer(s)", file=out)
        for item in settlement.positions:
            print(f"   {item.account:<14} net {item.net!s:>9}", file=out)
        net = Money(settings.currency, sum(item.net.minor for item in settlement.positions))
        print(f"   {'sum':<14} net {net!s:>9}", file=out, flush=True)
