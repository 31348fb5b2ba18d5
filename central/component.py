"""How the central components plug into the one central service and API.

Each component module (``central.directory``, ``central.ledger``...) has a
``component(context) -> Component``: its routes on the shared aiohttp app (behind the
shared error and authentication middlewares), and optionally what it runs while the
service is up (``start`` / ``stop``) and what it does when a DFSP is paused. The
``CentralContext`` is what they share: the database, the clock, the participants, the
settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.participants import Participants
from ussdloop.config import CentralSettings

Hook = Callable[[], Awaitable[None]]
PauseHook = Callable[[str], Awaitable[None]]  # the paused DFSP's name


@dataclass(frozen=True)
class CentralContext:
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    participants: Participants
    settings: CentralSettings


@dataclass(frozen=True)
class Component:
    name: str
    routes: Sequence[web.RouteDef] = ()
    start: Hook | None = None
    stop: Hook | None = None
    on_pause: PauseHook | None = None  # e.g. cancel the DFSP's pending transfers
    # Anything the other components or tests reach for (the ledger's use cases...).
    services: dict[str, object] = field(default_factory=dict)
