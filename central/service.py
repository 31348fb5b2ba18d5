"""The central services as one running service: database, components, HTTP API.

``CentralService`` is started alone (``ussdloop central``) or first in the whole network
(``ussdloop up``). ``start()`` opens the database engine, brings the schema to every
component's latest migration, builds the components of ``COMPONENTS`` and serves their
routes on the configured listener (port 0 picks a free port: see ``port``); ``stop()``
stops the components, closes the listener and disposes of the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from central.api import central_app
from central.component import CentralContext, Component
from central.directory.component import component as directory_component
from central.forensic import component as forensic_component
from central.forensic.writer import CentralLog
from central.fraud.component import component as fraud_component
from central.kms import component as kms_component
from central.ledger import component as ledger_component
from central.migrate import migrate
from central.participants import Participants
from central.rules.component import component as rules_component
from ussdloop.config import CentralSettings
from ussdloop.db import create_service_engine, session_factory

log = logging.getLogger(__name__)

# Each component's ``component(context) -> Component``, in start order.
COMPONENTS: tuple[Callable[[CentralContext], Component], ...] = (
    kms_component,
    forensic_component,
    directory_component,
    fraud_component,
    rules_component,
    ledger_component,
)


def _now() -> datetime:
    return datetime.now(UTC)


class CentralService:
    def __init__(
        self,
        settings: CentralSettings,
        *,
        database_url: str,
        schema: str | None = None,
        clock: Callable[[], datetime] = _now,  # the central clock (tests inject one)
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.database_url = database_url
        self.schema = schema  # a PostgreSQL schema of its own (tests, shared servers)
        self._engine: AsyncEngine | None = None
        self._runner: web.AppRunner | None = None
        self._port = settings.http.port
        self.context: CentralContext | None = None
        self.components: dict[str, Component] = {}

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http.host}:{self.port}"

    async def start(self) -> None:
        engine = create_service_engine(self.database_url, schema=self.schema)
        started: list[Component] = []
        try:
            await migrate(engine)
            sessions = session_factory(engine)
            participants = Participants(sessions, self.clock)
            context = CentralContext(
                sessions, self.clock, participants, self.settings, CentralLog()
            )
            components = [build(context) for build in COMPONENTS]
            for component in components:
                if component.start is not None:
                    await component.start()
                started.append(component)
            runner = web.AppRunner(central_app(context, components), access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.settings.http.host, self.settings.http.port)
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            await _stop_all(started)
            await engine.dispose()
            raise
        self._engine, self._runner, self.context = engine, runner, context
        self.components = {component.name: component for component in components}
        self._port = int(runner.addresses[0][1])
        log.info("event=central_started url=%s", self.base_url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        engine, self._engine = self._engine, None
        components, self.components = list(self.components.values()), {}
        try:
            if runner is not None:
                await runner.cleanup()
            await _stop_all(components)
        finally:
            if engine is not None:
                await engine.dispose()
                log.info("event=central_stopped")


async def _stop_all(components: list[Component]) -> None:
    for component in reversed(components):
        if component.stop is not None:
            await component.stop()
