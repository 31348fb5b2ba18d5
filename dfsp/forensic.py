"""The DFSP's forensic log (SPEC section 3, "Forensic logging"): its key, its writer, and
the gate that refuses new transfers while the log is unavailable.

A DFSP with a central link signs its records with an Ed25519 key made at its first
start and kept in its database (``forensic_keys``); it registers the public key with
the central KMS for the service named after itself and writes its chain (service = the
DFSP's name) to the central forensic log (``central.forensic.client.ForensicClient``).
``DfspForensic.start()`` runs once the API is up: it registers the key, starts the
writer (``service.started``) and logs the configuration (``rules.loaded``: the fee
and tier tables' SHA-256), retrying while the centre cannot be reached.

``require()`` is the gate (``dfsp.payments``: every send, hold, invoice approval and
cash-in passes it before anything else): while the writer is unavailable it asks the
sink once more (``ForensicWriter.check``) and raises ``ForensicLogUnavailable`` if it
still does not answer. ``record()`` writes an event after the money moved, best effort:
a failure is logged and leaves the writer unavailable, so the next transfer is refused.
What is logged is in ``dfsp.forensic_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import LargeBinary, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from central.client import CentralError, CentralHttp
from central.forensic.client import ForensicClient
from central.kms.client import KmsClient
from dfsp.domain.payments import PaymentError
from dfsp.store import Base, UTCDateTime
from ussdloop.forensic import Entry, ForensicUnavailable, ForensicWriter, public_key_base64

START_MAX_DELAY: Final = 5.0  # seconds between attempts to start while the centre is away
SINK_TIMEOUT: Final = 2.0  # seconds per call to the central forensic log

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class ForensicLogUnavailable(PaymentError):
    """The forensic log does not take records now: no transfer is accepted until it does."""

    def __init__(self, dfsp: str) -> None:
        super().__init__(f"the forensic log of {dfsp} is unavailable: try again later")


class ForensicKeyRow(Base):
    """A service's private signing key (raw 32 bytes; never logged, never served)."""

    __tablename__ = "forensic_keys"

    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


async def signing_key(
    sessions: async_sessionmaker[AsyncSession], service: str, clock: Clock
) -> Ed25519PrivateKey:
    """The service's key from the database, made and stored at the first call."""
    async with sessions.begin() as session:
        row = await session.get(ForensicKeyRow, service)
        if row is not None:
            return Ed25519PrivateKey.from_private_bytes(row.private_key)
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    try:
        async with sessions.begin() as session:
            session.add(ForensicKeyRow(service=service, private_key=raw, created_at=clock()))
    except IntegrityError:  # a concurrent start stored one first: use that one
        return await signing_key(sessions, service, clock)
    return key


def table_hash(table: Any) -> str:
    """The SHA-256 of a configuration table's canonical JSON."""
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DfspForensic:
    """One DFSP's forensic log; ``DfspForensic(name)`` without a writer logs nothing and
    refuses nothing (a DFSP on its own, without a central link)."""

    def __init__(
        self,
        dfsp: str,
        writer: ForensicWriter | None = None,
        *,
        kms: KmsClient | None = None,
        rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.dfsp = dfsp
        self.writer = writer
        self._kms = kms
        self._rules = dict(rules or {})
        self._starting: asyncio.Task[None] | None = None

    @classmethod
    async def for_central(
        cls,
        dfsp: str,
        central: CentralHttp,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        rules: Mapping[str, Any],
    ) -> DfspForensic:
        key = await signing_key(sessions, dfsp, clock)
        writer = ForensicWriter(
            dfsp, key, ForensicClient(central), clock=clock, timeout=SINK_TIMEOUT
        )
        return cls(dfsp, writer, kms=KmsClient(central), rules=rules)

    @property
    def available(self) -> bool:
        return self.writer is None or self.writer.available

    async def require(self) -> None:
        """Return if the log takes records (asking the sink again after an outage);
        else ``ForensicLogUnavailable``."""
        if self.writer is None or self.writer.available or await self.writer.check():
            return
        log.warning("event=transfer_refused_forensic_unavailable dfsp=%s", self.dfsp)
        raise ForensicLogUnavailable(self.dfsp)

    async def record(self, event: str, subject: str, data: Mapping[str, Any]) -> None:
        """Log an event whose money has moved: best effort, never raises."""
        await self.record_many([(event, subject, data)])

    async def record_many(self, entries: Sequence[Entry]) -> None:
        """``record`` of events made together (event, subject, data), in few appends."""
        if self.writer is None or not entries:
            return
        try:
            await self.writer.write_many(entries)
        except ForensicUnavailable:
            log.warning(
                "event=forensic_write_failed dfsp=%s records=%s subjects=%s",
                self.dfsp,
                ",".join(sorted({event for event, _, _ in entries})),
                ",".join(subject for _, subject, _ in entries),
            )
        except Exception:  # the money moved: a broken record must not undo the answer
            log.exception(
                "event=forensic_record_failed dfsp=%s records=%d", self.dfsp, len(entries)
            )

    async def record_before_commit(self, event: str, subject: str, data: Mapping[str, Any]) -> None:
        """Log a change inside its transaction, before it commits: when the log does not
        take the record, ``ForensicLogUnavailable`` (the caller's change rolls back)."""
        if self.writer is None:
            return
        try:
            await self.writer.write(event, subject, data)
        except ForensicUnavailable:
            raise ForensicLogUnavailable(self.dfsp) from None

    def start(self) -> None:
        """Start the log in the background (retried until the centre answers)."""
        if self.writer is not None and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())

    async def started(self) -> None:
        """Wait until the log has started (tests, and callers that need it now)."""
        if self._starting is not None:
            await self._starting

    async def stop(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        elif self.writer is not None and self.writer.available:
            await self.record("service.stopped", self.dfsp, {})

    async def _start(self) -> None:
        assert self.writer is not None and self._kms is not None
        delay = 0.2
        while True:
            try:
                await self._kms.register(self.dfsp, public_key_base64(self.writer.private_key))
                await self.writer.start()
                await self.writer.write("rules.loaded", self.dfsp, self._rules)
                log.info("event=forensic_log_started dfsp=%s", self.dfsp)
                return
            except (CentralError, aiohttp.ClientError, OSError, ForensicUnavailable) as error:
                log.info("event=forensic_start_retry dfsp=%s error=%s", self.dfsp, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, START_MAX_DELAY)


def rules_record(fees: Any, tiers: Any, currency: str) -> dict[str, Any]:
    """What ``rules.loaded`` says of the configuration: each table's hash, the tiers'
    names and the tables themselves."""
    return {
        "currency": currency,
        "feesSha256": table_hash(fees),
        "tiersSha256": table_hash(tiers),
        "fees": json.loads(json.dumps(fees, default=str)),
        "tiers": json.loads(json.dumps(tiers, default=str)),
    }
