"""A running central service with a clock the test moves (the central clock decides
expiry), DFSPs registered with their ledger clients, and transfer requests."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from central.client import CentralHttp, ParticipantsClient
from central.ledger.client import LedgerClient, TransferRequest
from central.service import CentralService
from tests.integration.central.support import OPERATOR_KEY, OPERATOR_SECRET
from tests.integration.conftest import Database
from ussdloop.config import CentralSettings, Listener
from ussdloop.money import Money

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class LedgerNetwork:
    service: CentralService
    session: aiohttp.ClientSession
    clock: Clock
    dfsps: dict[str, LedgerClient] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # raw HTTP as a DFSP

    @property
    def operator_http(self) -> CentralHttp:
        return CentralHttp(self.service.base_url, self.session, OPERATOR_KEY, OPERATOR_SECRET)

    @property
    def operator(self) -> LedgerClient:
        return LedgerClient(self.operator_http)

    @property
    def participants(self) -> ParticipantsClient:
        return ParticipantsClient(self.operator_http)

    async def register(self, name: str, net_debit_cap: str | None = None) -> LedgerClient:
        credentials = await self.participants.register(name, net_debit_cap=net_debit_cap)
        http = CentralHttp(self.service.base_url, self.session, credentials.key, credentials.secret)
        self.dfsps[name] = LedgerClient(http)
        self.headers[name] = http.headers
        return self.dfsps[name]


@asynccontextmanager
async def running_ledger(database: Database) -> AsyncIterator[LedgerNetwork]:
    clock = Clock()
    config = CentralSettings(
        http=Listener("127.0.0.1", 0), operator_key=OPERATOR_KEY, operator_secret=OPERATOR_SECRET
    )
    service = CentralService(config, database_url=database.url, schema=database.schema, clock=clock)
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield LedgerNetwork(service, session, clock)
    finally:
        await service.stop()


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def transfer(
    payer: str,
    payee: str,
    amount: str,
    fee: str = "0",
    *,
    seconds: float = 30,
    now: datetime = START,
) -> tuple[TransferRequest, bytes]:
    """A transfer request and the fulfilment that executes it."""
    fulfilment = os.urandom(32)
    request = TransferRequest(
        id=str(uuid.uuid4()),
        payer=payer,
        payee=payee,
        amount=usd(amount),
        scheme_fee=usd(fee),
        condition=hashlib.sha256(fulfilment).digest(),
        expires_at=now + timedelta(seconds=seconds),
        memo={"ilp": "AYIBAAAAAAAAA-g", "trace": "test"},
    )
    return request, fulfilment
