"""Pushing a DFSP's notifications to its WebSocket connections.

The notifications are rows (``CentralLedger.notifications_after``); ``Sockets`` only
wakes the connections of the DFSPs a commit concerned. Each connection remembers the
last number it sent and sends what follows, in order, so a notification reaches it at
most once; it also looks every ``POLL_SECONDS`` (another central node may have written
it). A connection starts after the latest notification (or after ``?after=<seq>``);
after a reconnect the DFSP pulls what it missed with ``GET /notifications?after=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Final

from aiohttp import WSMsgType, web

from central.ledger.service import CentralLedger

POLL_SECONDS: Final = 1.0
MAX_SOCKETS_PER_DFSP: Final = 16
BATCH: Final = 100

log = logging.getLogger(__name__)


class Sockets:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._closing = False  # the service is stopping: every socket ends

    def wake(self, dfsps: Iterable[str]) -> None:
        for dfsp in dfsps:
            for event in self._waiting.get(dfsp, ()):
                event.set()

    def count(self, dfsp: str) -> int:
        return len(self._waiting.get(dfsp, ()))

    async def serve(
        self, request: web.Request, ledger: CentralLedger, dfsp: str, after: int | None
    ) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=30.0)
        await socket.prepare(request)
        if self.count(dfsp) >= MAX_SOCKETS_PER_DFSP:
            await socket.close(message=b"too many notification sockets for this DFSP")
            return socket
        event = asyncio.Event()
        self._waiting.setdefault(dfsp, set()).add(event)
        last = await ledger.latest_notification(dfsp) if after is None else after
        reader = asyncio.ensure_future(_until_closed(socket))
        log.info("event=ledger_socket_opened dfsp=%s after=%d", dfsp, last)
        try:
            while not (self._closing or socket.closed or reader.done()):
                event.clear()
                for seq, body in await ledger.notifications_after(dfsp, last, BATCH):
                    await socket.send_json({"id": seq, **body})
                    last = seq
                waiter = asyncio.ensure_future(event.wait())
                await asyncio.wait(
                    {waiter, reader}, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
        except (ConnectionError, RuntimeError):
            pass  # the DFSP went away; it pulls what it missed
        finally:
            self._waiting[dfsp].discard(event)
            reader.cancel()
            with contextlib.suppress(Exception):
                await socket.close()
            log.info("event=ledger_socket_closed dfsp=%s last=%d", dfsp, last)
        return socket

    async def close_all(self) -> None:
        """End every socket (at shutdown, before the server waits for its handlers)."""
        self._closing = True
        for events in self._waiting.values():
            for event in events:
                event.set()


async def _until_closed(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) what the DFSP sends until it closes."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
