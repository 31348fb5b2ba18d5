"""Pushing a DFSP's notifications to its WebSocket connections.

The notifications are rows (``CentralLedger.notifications_after``); after a commit the
ledger hands ``Sockets.wake`` what it wrote, and only the connections of the DFSPs
concerned wake. Each connection remembers the last number it sent and sends what
follows, in order, so a notification reaches it at most once: the handed notifications
themselves when they follow that number without a gap (no read), otherwise what the
rows hold after it (a wake came out of order, or more than ``BATCH`` piled up); it also
reads every ``POLL_SECONDS`` (another central node may have written some). A connection
starts after the latest notification (or after ``?after=<seq>``); after a reconnect the
DFSP pulls what it missed with ``GET /notifications?after=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import WSMsgType, web

from central.ledger.service import CentralLedger, LedgerNotice

POLL_SECONDS: Final = 1.0
MAX_SOCKETS_PER_DFSP: Final = 16
BATCH: Final = 100

log = logging.getLogger(__name__)


class _Listener:
    """One connection's wake-up and the notifications handed to it since it last sent."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.handed: deque[tuple[int, dict[str, Any]]] = deque(maxlen=BATCH)

    def hand(self, notice: LedgerNotice) -> None:
        self.handed.append((notice.seq, notice.body))
        self.event.set()

    def following(self, last: int) -> list[tuple[int, dict[str, Any]]] | None:
        """The handed notifications after ``last`` when they follow it without a gap
        (None: read the rows); the hand is emptied."""
        handed = [(seq, body) for seq, body in self.handed if seq > last]
        self.handed.clear()
        if [seq for seq, _ in handed] != list(range(last + 1, last + 1 + len(handed))):
            return None
        return handed


class Sockets:
    def __init__(self) -> None:
        self._waiting: dict[str, set[_Listener]] = {}
        self._closing = False  # the service is stopping: every socket ends

    def wake(self, notices: Iterable[LedgerNotice]) -> None:
        for notice in notices:
            for listener in self._waiting.get(notice.dfsp, ()):
                listener.hand(notice)

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
        listener = _Listener()
        self._waiting.setdefault(dfsp, set()).add(listener)
        last = await ledger.latest_notification(dfsp) if after is None else after
        reader = asyncio.ensure_future(_until_closed(socket))
        log.info("event=ledger_socket_opened dfsp=%s after=%d", dfsp, last)
        try:
            woken = False  # the first pass reads what was written before the socket
            while not (self._closing or socket.closed or reader.done()):
                listener.event.clear()
                handed = listener.following(last) if woken else None
                if handed is None:
                    handed = await ledger.notifications_after(dfsp, last, BATCH)
                for seq, body in handed:
                    await socket.send_json({"id": seq, **body})
                    last = seq
                woken = await _woken(listener.event, reader)
        except (ConnectionError, RuntimeError):
            pass  # the DFSP went away; it pulls what it missed
        finally:
            self._waiting[dfsp].discard(listener)
            reader.cancel()
            with contextlib.suppress(Exception):
                await socket.close()
            log.info("event=ledger_socket_closed dfsp=%s last=%d", dfsp, last)
        return socket

    async def close_all(self) -> None:
        """End every socket (at shutdown, before the server waits for its handlers)."""
        self._closing = True
        for listeners in self._waiting.values():
            for listener in listeners:
                listener.event.set()


async def _until_closed(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) what the DFSP sends until it closes."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


async def _woken(event: asyncio.Event, reader: asyncio.Future[None]) -> bool:
    """Wait for a wake-up, the socket's end or ``POLL_SECONDS``; whether it was woken."""
    waiter = asyncio.ensure_future(event.wait())
    either: set[asyncio.Future[Any]] = {waiter, reader}
    await asyncio.wait(either, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    return event.is_set()
