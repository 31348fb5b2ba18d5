"""The central forensic log: appending services' records after checking their chain and
signature, reading them back, verifying every stored chain, a transfer's path.

An append is one transaction: each record must be signed by one of its service's KMS
keys and follow the last stored record of its service (``seq`` + 1, ``prev_hash`` its
hash; seq 1 follows the genesis). A record already stored identically is accepted again
(a writer that lost an answer re-sends it); anything else is refused whole with what is
wrong (422).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.errors import ForbiddenError, UnprocessableEntityError, ValidationError
from central.forensic.store import ForensicRecordRow
from central.kms.service import owner_of, verifying_keys
from ussdloop import db
from ussdloop.forensic import GENESIS, Record, Report, canonical_json, verify

MAX_APPEND: Final = 100  # records per append
MAX_READ: Final = 1000  # records per read
MAX_TOPS_KEPT: Final = 1024  # services whose last appended seq and hash are remembered


class ForensicLog:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._keys: dict[str, list[Ed25519PublicKey]] | None = None  # the KMS's, as last read
        # Each service's last seq and hash as this log appended them: an append that
        # follows on needs no read of the chain's top (see ``_top``).
        self._tops: dict[str, tuple[int, str]] = {}

    async def append(self, records: Sequence[Record], *, caller: str) -> int:
        """Store ``records`` in order for ``caller`` (a DFSP's name, or the operator for
        the central services); the number newly stored."""
        if not 1 <= len(records) <= MAX_APPEND:
            raise ValidationError(f"append 1 to {MAX_APPEND} records at a time")
        for record in records:
            if owner_of(record.service) != caller:
                raise ForbiddenError(f"{caller!r} may not append to {record.service!r}'s log")
        try:
            stored, tops = await self._append_all(records, self._tops)
        except IntegrityError:
            # A top remembered here may be stale (another central node appended to the
            # chain meanwhile): the stored rows decide, as without the memory.
            self._tops.clear()
            try:
                stored, tops = await self._append_all(records, {})
            except IntegrityError:
                raise UnprocessableEntityError(
                    "another append took the same seq meanwhile: read the last record and retry"
                ) from None
        if len(self._tops) + len(tops) > MAX_TOPS_KEPT:
            self._tops.clear()
        for service, top in tops.items():
            self._tops[service] = max(top, self._tops.get(service, top))
        return stored

    async def _append_all(
        self, records: Sequence[Record], remembered: Mapping[str, tuple[int, str]]
    ) -> tuple[int, dict[str, tuple[int, str]]]:
        """Store ``records`` in one transaction; how many were new, and the last seq and
        hash of each of their services once committed."""
        async with self._sessions.begin() as session:
            # The KMS keys as read before: keys are only ever added (a rotation keeps
            # the previous ones), so those still verify what they verified; they are
            # read again when a record is not signed by one of them (a new key).
            keys, fresh = self._keys, False
            tops: dict[str, tuple[int, str]] = {}  # each service's last seq and hash
            stored = 0
            for record in records:
                if keys is None or not record.authentic(keys.get(record.service, ())):
                    if not fresh:
                        keys, fresh = await verifying_keys(session), True
                        self._keys = keys
                    assert keys is not None
                    _check_signed(record, keys.get(record.service))
                if record.service not in tops:
                    tops[record.service] = await _top(session, record, remembered)
                top = tops[record.service]
                stored += await self._append_one(session, record, top)
                tops[record.service] = max(top, (record.seq, record.hash))
            return stored, tops

    async def _append_one(self, session: AsyncSession, record: Record, top: tuple[int, str]) -> int:
        """Store ``record`` (its signature checked) after ``top`` (its service's last
        stored seq and hash)."""
        name = f"{record.service} seq {record.seq}"
        at = _moment(record, name)
        last_seq, last_hash = top
        if record.seq <= last_seq:  # stored already: accepted again only if the same
            same = await session.scalar(
                select(ForensicRecordRow).where(
                    ForensicRecordRow.service == record.service, ForensicRecordRow.seq == record.seq
                )
            )
            if same is not None and same.hash == record.hash:
                return 0
            if same is not None:
                raise UnprocessableEntityError(f"{name} is already stored with another hash")
        if record.seq != last_seq + 1:
            raise UnprocessableEntityError(
                f"{name}: the next seq of {record.service} is {last_seq + 1}"
            )
        if record.prev_hash != last_hash:
            raise UnprocessableEntityError(
                f"{name}: prev_hash is not the hash of seq {last_seq}"
                if last_seq
                else f"{name}: seq 1's prev_hash is the genesis (64 zeros)"
            )
        session.add(_row(record, at, self._clock()))  # flushed with the append's commit
        return 1

    async def last(self, service: str) -> Record | None:
        async with self._reading() as session:
            row = await _last(session, service)
            return None if row is None else record_of(row)

    async def records(self, service: str, *, after_seq: int = 0, limit: int = 100) -> list[Record]:
        limit = max(1, min(limit, MAX_READ))
        async with self._reading() as session:
            rows = await session.scalars(
                select(ForensicRecordRow)
                .where(ForensicRecordRow.service == service, ForensicRecordRow.seq > after_seq)
                .order_by(ForensicRecordRow.seq)
                .limit(limit)
            )
            return [record_of(row) for row in rows]

    async def transfer_path(self, transfer_id: str) -> list[Record]:
        """Every record about the transfer (its subject, or mentioned in its data), by time."""
        async with self._reading() as session:
            return await transfer_path(session, transfer_id)

    async def customer_records(
        self, user_number: str, since: datetime, until: datetime
    ) -> list[Record]:
        """Every record about one customer between ``since`` and ``until`` (SPEC section
        3, "Forensic logging": all transfers of one customer in a time window)."""
        async with self._reading() as session:
            return await customer_records(session, user_number, since, until)

    async def verify(self) -> Report:
        async with self._reading() as session:
            return await verify_stored(session)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            yield session


async def verify_stored(session: AsyncSession) -> Report:
    """Every stored chain, in the order its rows were appended, against the KMS keys."""
    keys = await verifying_keys(session)
    rows = await session.scalars(select(ForensicRecordRow).order_by(ForensicRecordRow.id))
    records = [record_of(row) for row in rows]
    return await asyncio.to_thread(verify, records, keys)


async def transfer_path(session: AsyncSession, transfer_id: str) -> list[Record]:
    rows = await session.scalars(
        select(ForensicRecordRow)
        .where(
            or_(
                ForensicRecordRow.subject == transfer_id,
                ForensicRecordRow.data.contains(json.dumps(transfer_id), autoescape=True),
            )
        )
        .order_by(ForensicRecordRow.at_utc, ForensicRecordRow.service, ForensicRecordRow.seq)
        .limit(MAX_READ)
    )
    return [record_of(row) for row in rows]


async def customer_records(
    session: AsyncSession, user_number: str, since: datetime, until: datetime
) -> list[Record]:
    """The records whose subject is the user number, or whose data names it as a party
    (``sender``, ``receiver``...), written in ``[since, until)``, by time."""
    rows = await session.scalars(
        select(ForensicRecordRow)
        .where(
            ForensicRecordRow.at_utc >= since,
            ForensicRecordRow.at_utc < until,
            or_(
                ForensicRecordRow.subject == user_number,
                ForensicRecordRow.data.contains(json.dumps(user_number), autoescape=True),
            ),
        )
        .order_by(ForensicRecordRow.at_utc, ForensicRecordRow.service, ForensicRecordRow.seq)
        .limit(MAX_READ)
    )
    records = (record_of(row) for row in rows)
    return [r for r in records if r.subject == user_number or user_number in r.data.values()]


def transfers_in(records: Sequence[Record]) -> list[str]:
    """The transfers these records are about, in the order they first appear."""
    found = (r.subject for r in records if r.event.startswith("transfer."))
    return list(dict.fromkeys(found))


async def _top(
    session: AsyncSession, record: Record, remembered: Mapping[str, tuple[int, str]]
) -> tuple[int, str]:
    """The last seq and hash of ``record``'s service before it: as remembered from this
    log's own appends when the record follows that (no read; the unique ``(service,
    seq)`` refuses it if another node appended meanwhile, and ``append`` then asks the
    rows), otherwise as stored."""
    top = remembered.get(record.service)
    if top is not None and top == (record.seq - 1, record.prev_hash):
        return top
    last = await _last(session, record.service)
    return (0, GENESIS) if last is None else (last.seq, last.hash)


async def _last(session: AsyncSession, service: str) -> ForensicRecordRow | None:
    top = (
        select(func.max(ForensicRecordRow.seq))
        .where(ForensicRecordRow.service == service)
        .scalar_subquery()
    )
    return await session.scalar(
        select(ForensicRecordRow).where(
            ForensicRecordRow.service == service, ForensicRecordRow.seq == top
        )
    )


def _check_signed(record: Record, keys: Sequence[Ed25519PublicKey] | None) -> None:
    """Raise what is wrong unless ``record`` is signed by one of ``keys``."""
    name = f"{record.service} seq {record.seq}"
    if not keys:
        raise UnprocessableEntityError(f"{name}: no key is registered for {record.service!r}")
    if not record.hash_matches():
        raise UnprocessableEntityError(f"{name}: the hash does not match the content")
    if not record.authentic(keys):
        raise UnprocessableEntityError(f"{name}: the signature is not {record.service}'s")


def _moment(record: Record, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(record.at)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise UnprocessableEntityError(f"{name}: 'at' is an ISO 8601 time with its UTC offset")
    return at


def _row(record: Record, at: datetime, now: datetime) -> ForensicRecordRow:
    return ForensicRecordRow(
        service=record.service,
        seq=record.seq,
        at=record.at,
        at_utc=at,
        event=record.event,
        subject=record.subject,
        data=canonical_json(record.data).decode(),
        prev_hash=record.prev_hash,
        hash=record.hash,
        signature=record.signature,
        stored_at=now,
    )


def record_of(row: ForensicRecordRow) -> Record:
    try:
        data = json.loads(row.data)
    except ValueError:
        data = {"unreadable": row.data}  # a row changed by hand: verify names it
    if not isinstance(data, dict):
        data = {"unreadable": row.data}
    return Record(
        row.service,
        row.seq,
        row.at,
        row.event,
        row.subject,
        data,
        row.prev_hash,
        row.hash,
        row.signature,
    )
