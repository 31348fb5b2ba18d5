"""The clearing network in one process for the fault-injection tests: the centre and two
DFSP services on free ports (SQLite under ``tmp_path``; the centre on PostgreSQL too when
USSDLOOP_TEST_PG is set), registered with the operator as ``ussdloop up`` does, each
restartable on the same data and port; customers and payments through ``DfspClient``
(what the USSD menus call); ``assert_agree`` checks the three ledgers against each other.

Faults are injected by stopping and starting services, by wrapping one call of a
connector's central client, and by a short payment window (``WINDOW``), so expiry takes
about a second of real time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from central.client import CentralError, CentralHttp
from central.ledger.client import LedgerClient
from central.ledger.store import LedgerTransferRow
from central.service import CentralService
from clearing.connector import Connector
from dfsp import store
from dfsp.clearing_ledger import CLEARING_ACCOUNT
from dfsp.client import CustomerInfo, DfspClient, SendQuote, SendResult
from dfsp.domain.notices import Notice
from dfsp.domain.transfers import UnknownTransfer
from dfsp.service import DfspService
from tests.integration.conftest import Database
from tests.support import eventually
from ussdloop.compose import central_link, dfsp_service
from ussdloop.config import NetworkConfig, load_network
from ussdloop.money import Money

PIN = "4071"
WINDOW = timedelta(seconds=3)  # a payment request's central expiry in these tests: 2 s past
# the payee's 1 s fulfilment margin, so a loaded machine still fulfils in time
OUTCOME_WAIT = 4.0  # seconds a send waits for the centre's outcome
PAYER, PAYEE = "dfsp1", "dfsp2"
EXECUTED, REJECTED, EXPIRED, PREPARED = "executed", "rejected", "expired", "prepared"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@dataclass
class Dfsp:
    """One DFSP service, restartable on its database and port; ``notices`` records what
    its customers were told (every start)."""

    service: DfspService
    http: aiohttp.ClientSession
    notices: list[Notice] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def client(self) -> DfspClient:
        return DfspClient(self.service.base_url, self.http)

    @property
    def connector(self) -> Connector:
        assert self.service.interledger is not None, f"{self.name} is not running"
        return self.service.interledger.connector

    async def start(self) -> None:
        await self.service.start()
        settings = self.service.settings  # a restart keeps the port chosen at first start
        self.service.settings = replace(settings, api=replace(settings.api, port=self.service.port))
        notifications = self.service.notifications
        assert notifications is not None
        post = notifications.post

        async def recorded(notices: Sequence[Notice]) -> None:
            self.notices.extend(notices)
            await post(notices)

        notifications.post = recorded  # type: ignore[method-assign]
        announcing = self.service._announce  # its directory entry, before the first quote
        assert announcing is not None
        await asyncio.wait_for(asyncio.shield(announcing), 5.0)

    async def stop(self) -> None:
        await self.service.stop()

    def told(self, customer: CustomerInfo) -> list[str]:
        return [n.message for n in self.notices if n.customer_id == customer.customer_id]

    async def balance(self, customer: CustomerInfo) -> Money:
        return await self.client.balance(
            customer.customer_id, str(customer.primary_account_id), PIN
        )

    async def state_of(self, transfer_id: str) -> str | None:
        assert self.service.ledger is not None
        try:
            return (await self.service.ledger.transfer(transfer_id)).state.value
        except UnknownTransfer:
            return None

    async def clearing_balance(self) -> Money:
        assert self.service.ledger is not None
        return (await self.service.ledger.balance(CLEARING_ACCOUNT))[0]

    async def prepared(self) -> int:
        assert self.service.ledger is not None
        async with self.service.ledger.reading() as session:
            query = select(func.count()).where(store.TransferRow.state == "prepared")
            return int(await session.scalar(query) or 0)


@dataclass
class Network:
    central: CentralService
    dfsps: dict[str, Dfsp]
    http: aiohttp.ClientSession
    window: timedelta

    @property
    def payer(self) -> Dfsp:
        return self.dfsps[PAYER]

    @property
    def payee(self) -> Dfsp:
        return self.dfsps[PAYEE]

    @property
    def operator_http(self) -> CentralHttp:
        settings = self.central.settings
        return CentralHttp(
            self.central.base_url, self.http, settings.operator_key, settings.operator_secret
        )

    @property
    def operator(self) -> LedgerClient:
        return LedgerClient(self.operator_http)

    async def stop_central(self) -> None:
        """Stop the centre as a crash would: its connections (the DFSPs' notification
        sockets) are cut first. (A graceful stop waits up to aiohttp's 60 s shutdown
        timeout for those sockets, which the centre does not close.)"""
        runner = self.central._runner
        assert runner is not None and runner.server is not None
        for connection in list(runner.server.connections):
            connection.force_close()
        await self.central.stop()

    async def start_central(self) -> None:
        await self.central.start()

    async def central_state(self, transfer_id: str) -> str | None:
        try:
            return (await self.operator.get(transfer_id)).state
        except CentralError as error:
            if error.status == 404:
                return None
            raise

    async def nothing_held(self) -> bool:
        return all([await dfsp.prepared() == 0 for dfsp in self.dfsps.values()])

    async def caught_up(self, dfsp: Dfsp) -> bool:
        """The DFSP has handled every notification the centre addressed to it."""
        assert self.central.context is not None and dfsp.service.interledger is not None
        ledger = self.central.components["ledger"].services["ledger"]
        latest = await ledger.latest_notification(dfsp.name)  # type: ignore[attr-defined]
        return bool(await dfsp.connector._local.load_cursor() >= latest)

    async def customer(self, dfsp: Dfsp, msisdn: str, first: str, last: str) -> CustomerInfo:
        return await dfsp.client.register(
            msisdn=msisdn,
            first_name=first,
            last_name=last,
            date_of_birth="1990-05-17",
            national_id=f"NI{msisdn[-6:]}",
            pin=PIN,
        )

    async def quote(self, payer: CustomerInfo, payee: CustomerInfo, amount: str) -> SendQuote:
        return await self.payer.client.quote_send(
            payer.customer_id, str(payer.primary_account_id), payee.user_number, usd(amount)
        )

    async def send(self, quote: SendQuote, transfer_id: str | None = None) -> SendResult:
        return await self.payer.client.send(quote, PIN, transfer_id or str(uuid.uuid4()))

    async def assert_agree(
        self, states: dict[str, tuple[str | None, str | None, str | None]]
    ) -> None:
        """The three ledgers agree: each transfer in the state given for the payer DFSP's
        ledger, the centre and the payee DFSP's ledger (None: unknown there); nothing held
        anywhere; each DFSP's clearing account mirrors its position at the centre; every
        DFSP ledger sums to zero."""
        for transfer_id, expected in states.items():
            found = (
                await self.payer.state_of(transfer_id),
                await self.central_state(transfer_id),
                await self.payee.state_of(transfer_id),
            )
            assert found == expected, f"{transfer_id}: (payer, centre, payee) {found}"
        assert self.central.context is not None
        async with self.central.context.sessions() as session:
            held = await session.scalar(
                select(func.count()).where(LedgerTransferRow.state == "prepared")
            )
        assert held == 0, "transfers still prepared at the centre"
        positions = {p.account: p.net for p in await self.operator.positions()}
        for dfsp in self.dfsps.values():
            assert await dfsp.prepared() == 0, f"transfers still prepared at {dfsp.name}"
            zero = usd("0")
            # What a DFSP owes through the centre is its clearing account's balance.
            assert -(await dfsp.clearing_balance()) == positions.get(dfsp.name, zero), dfsp.name
            assert dfsp.service.ledger is not None
            assert await dfsp.service.ledger.total_balance("USD") == zero
            assert await dfsp.service.ledger.audit() == []
        assert sum(net.minor for net in positions.values()) == 0


# --- waiting and fault injection ------------------------------------------------------


async def at_centre(network: Network, transfer_id: str, state: str) -> None:
    async def reached() -> bool:
        return await network.central_state(transfer_id) == state

    await eventually(reached)


def central_client(network: Network, dfsp: str) -> Any:
    """The LedgerClient a DFSP's connector talks to the centre with (to wrap one call)."""
    return network.dfsps[dfsp].connector._central


async def parties(network: Network) -> tuple[CustomerInfo, CustomerInfo]:
    """Hamim at dfsp1 (1000 USD) and Kani at dfsp2 (nothing yet)."""
    hamim = await network.customer(network.payer, "256700000701", "Hamim", "Ali")
    kani = await network.customer(network.payee, "256700000702", "Kani", "Moe")
    return hamim, kani


def centre_stops_at(
    network: Network, monkeypatch: pytest.MonkeyPatch, dfsp: str, call: str
) -> asyncio.Event:
    """The centre stops just as ``dfsp``'s connector makes ``call`` (``prepare``: the
    payer's funds held; ``fulfil_many``: the payee's credits held); the event is set then."""
    client = central_client(network, dfsp)
    original = getattr(client, call)
    stopped = asyncio.Event()

    async def as_the_centre_stops(*args: Any) -> Any:
        if not stopped.is_set():
            await network.stop_central()
            stopped.set()
        return await original(*args)

    monkeypatch.setattr(client, call, as_the_centre_stops)
    return stopped


def network_config() -> NetworkConfig:
    return load_network(environ={})


@asynccontextmanager
async def clearing_network(
    tmp_path: Path, database: Database, *, window: timedelta = WINDOW
) -> AsyncIterator[Network]:
    """The centre on ``database``, dfsp1 (customers open with 1000 USD) and dfsp2
    (customers open empty, so one can close their last account), both registered, with
    payment requests that expire ``window`` after they are issued."""
    config = network_config()
    settings = replace(config.central, http=replace(config.central.http, port=0))
    central = CentralService(settings, database_url=database.url, schema=database.schema)
    await central.start()
    central.settings = replace(settings, http=replace(settings.http, port=central.port))
    dfsps: dict[str, Dfsp] = {}
    try:
        async with aiohttp.ClientSession() as http:
            for name in (PAYER, PAYEE):
                link = await central_link(config, name, central.base_url, tmp_path)
                service = dfsp_service(config, name, any_port=True, data_dir=tmp_path, central=link)
                service.payment_window, service.outcome_wait = window, OUTCOME_WAIT
                if name == PAYEE:
                    service.opening_balance = None
                dfsps[name] = Dfsp(service, http)
                await dfsps[name].start()
            yield Network(central, dfsps, http, window)
    finally:
        for dfsp in reversed(dfsps.values()):
            await dfsp.stop()
        await central.stop()
