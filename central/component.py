"""How the central components plug into the one central service and API.

Each component module (``central.directory``, ``central.ledger``...) has a
``component(context) -> Component``: its routes on the shared aiohttp app (behind the
shared error and authentication middlewares), and optionally what it runs while the
service is up (``start`` / ``stop``) and what it does when a DFSP is paused. The
``CentralContext`` is what they share: the database, the clock, the participants, the
settings, and central's own forensic chain (``forensic``: written once the forensic
component has started, which is second; a component that moves money refuses new
transfers while it is unavailable). ``EventLog`` is what a component needs of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.participants import Participants
from ussdloop.config import CentralSettings
from ussdloop.forensic import Entry

if TYPE_CHECKING:
    from central.forensic.writer import CentralLog

Hook = Callable[[], Awaitable[None]]
PauseHook = Callable[[str], Awaitable[None]]  # the paused DFSP's name


class EventLog(Protocol):
    """A forensic chain as the components use it (``central.forensic.writer.CentralLog``):
    ``write`` raises ``ussdloop.forensic.ForensicUnavailable`` when the record was not
    stored; ``check`` tries the store again after an outage."""

    @property
    def available(self) -> bool: ...

    async def check(self) -> bool: ...

    async def write(
        self, event: str, subject: str = "", data: Mapping[str, Any] | None = None
    ) -> object: ...

    async def write_many(self, entries: Sequence[Entry]) -> object:
        """``write`` of records made together (event, subject, data), in few appends."""


@dataclass(frozen=True)
class CentralContext:
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    participants: Participants
    settings: CentralSettings
    forensic: CentralLog  # central's own chain (service ``central``)


@dataclass(frozen=True)
class Component:
    name: str
    routes: Sequence[web.RouteDef] = ()
    start: Hook | None = None
    stop: Hook | None = None
    # First thing when the service stops, before the server waits for open requests:
    # end the long-lived ones (notification sockets).
    closing: Hook | None = None
    on_pause: PauseHook | None = None  # e.g. cancel the DFSP's pending transfers
    # Anything the other components or tests reach for (the ledger's use cases...).
    services: dict[str, object] = field(default_factory=dict)
