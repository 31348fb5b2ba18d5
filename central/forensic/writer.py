"""The central service's own forensic chain (service ``central``) and the component.

At start the component loads (or, the first time, makes) central's Ed25519 key from the
KMS tables, registers its public key, and starts a ``ForensicWriter`` whose sink is the
forensic store itself; the chain records every start (``service.started``) and stop.

How another central component logs an event: it takes the ``CentralLog`` from the
``CentralContext`` (``context.forensic``, also this component's
``services["forensic_writer"]``) and calls::

    await central_log.write("rule.changed", subject=rule_id, data={"by": "operator"})

``write`` raises ``ussdloop.forensic.ForensicUnavailable`` when the record could not be
stored (or before the service started): a component that moves money refuses the
transfer then. ``central_log.available`` says the same without writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from central.component import CentralContext, Component
from central.forensic.api import ForensicRoutes
from central.forensic.service import ForensicLog
from central.kms.service import CENTRAL, OPERATOR, Kms
from ussdloop.forensic import Entry, ForensicUnavailable, ForensicWriter, Record


class LocalSink:
    """The forensic store as a writer's sink (the central service writes in-process)."""

    def __init__(self, log: ForensicLog) -> None:
        self._log = log

    async def last(self, service: str) -> Record | None:
        return await self._log.last(service)

    async def append(self, records: Sequence[Record]) -> None:
        await self._log.append(records, caller=OPERATOR)


class CentralLog:
    """The ``central`` chain's writer, usable from build time: it writes once started."""

    def __init__(self) -> None:
        self._writer: ForensicWriter | None = None

    @property
    def available(self) -> bool:
        return self._writer is not None and self._writer.available

    async def write(
        self, event: str, subject: str = "", data: Mapping[str, Any] | None = None
    ) -> Record:
        (record,) = await self.write_many([(event, subject, data)])
        return record

    async def write_many(self, entries: Sequence[Entry]) -> list[Record]:
        if self._writer is None:
            raise ForensicUnavailable("the central forensic log is not running")
        return await self._writer.write_many(entries)

    async def check(self) -> bool:
        """Whether records are stored again (after an outage this logs its end)."""
        return self._writer is not None and await self._writer.check()

    async def start(self, writer: ForensicWriter) -> None:
        await writer.start()
        self._writer = writer

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            # When the database is going too, the next start is logged anyway.
            with contextlib.suppress(ForensicUnavailable):
                await writer.write("service.stopped", writer.service)


def component(context: CentralContext) -> Component:
    log = ForensicLog(context.sessions, context.clock)
    kms = Kms(context.sessions, context.clock)
    central_log = context.forensic

    async def start() -> None:
        key = await kms.signing_key(CENTRAL, context.settings.operator_secret)
        await central_log.start(ForensicWriter(CENTRAL, key, LocalSink(log), clock=context.clock))

    return Component(
        "forensic",
        routes=ForensicRoutes(log).routes(),
        start=start,
        stop=central_log.stop,
        services={"forensic_writer": central_log, "forensic_log": log},
    )
