"""The central ledger as a component of the central service: its routes, the expiry
sweep it runs while the service is up, and the pause hook that rejects a paused DFSP's
pending transfers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from central.component import CentralContext, Component
from central.ledger.api import LedgerRoutes
from central.ledger.notifications import Sockets
from central.ledger.service import CentralLedger

SWEEP_SECONDS: Final = 0.5

log = logging.getLogger(__name__)


def component(context: CentralContext) -> Component:
    sockets = Sockets()
    ledger = CentralLedger(
        context.sessions,
        context.clock,
        context.settings.currency,
        sockets.wake,
        forensic=context.forensic,
    )
    sweeping: list[asyncio.Task[None]] = []

    async def sweep() -> None:
        while True:
            try:
                while await ledger.expire_due():
                    pass
            except Exception:  # the database may be briefly away: try again next time
                log.exception("event=ledger_expiry_sweep_failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def start() -> None:
        sweeping.append(asyncio.ensure_future(sweep()))

    async def stop() -> None:
        await sockets.close_all()
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sweeping.clear()

    async def on_pause(dfsp: str) -> None:
        rejected = await ledger.reject_pending_of(dfsp)
        log.info("event=ledger_paused_dfsp_rejected dfsp=%s transfers=%d", dfsp, rejected)

    return Component(
        name="ledger",
        routes=LedgerRoutes(ledger, sockets, context.settings.currency).routes(),
        start=start,
        stop=stop,
        closing=sockets.close_all,
        on_pause=on_pause,
        services={"ledger": ledger, "sockets": sockets},
    )
