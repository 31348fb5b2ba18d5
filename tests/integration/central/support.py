"""A running central service for the central integration tests (SQLite, and PostgreSQL
when USSDLOOP_TEST_PG is set), and clients for its operator and its DFSPs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from central.client import CentralHttp, ParticipantsClient, RegisteredDfsp
from central.service import CentralService
from tests.integration.conftest import Database
from ussdloop.config import CentralSettings, Listener

OPERATOR_KEY = "operator"
OPERATOR_SECRET = "operator-test-secret"


@dataclass
class Central:
    service: CentralService
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.service.base_url

    def as_operator(self) -> CentralHttp:
        return CentralHttp(self.url, self.session, OPERATOR_KEY, OPERATOR_SECRET)

    def as_dfsp(self, credentials: RegisteredDfsp) -> CentralHttp:
        return CentralHttp(self.url, self.session, credentials.key, credentials.secret)

    async def register(self, name: str, net_debit_cap: str | None = None) -> RegisteredDfsp:
        return await ParticipantsClient(self.as_operator()).register(
            name, net_debit_cap=net_debit_cap
        )


@asynccontextmanager
async def running_central(database: Database, **settings: object) -> AsyncIterator[Central]:
    config = CentralSettings(
        http=Listener("127.0.0.1", 0),
        operator_key=OPERATOR_KEY,
        operator_secret=OPERATOR_SECRET,
        **settings,  # type: ignore[arg-type]
    )
    service = CentralService(config, database_url=database.url, schema=database.schema)
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Central(service, session)
    finally:
        await service.stop()
