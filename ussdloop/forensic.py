"""The tamper-evident forensic log every service writes: records, their chain, checking it.

A record is ``{service, seq, at, event, subject, data, prev_hash, hash, signature}``:
``hash`` is the SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8) of
every other field but ``signature``; ``signature`` is the service's Ed25519 signature
(base64) over the 32 bytes of that hash. A service's chain starts at seq 1 with
``prev_hash = GENESIS`` (64 zeros); each next record carries its predecessor's hash.

``verify(records, public_keys)`` says per service which seq ranges are intact and names
every problem: a record ``changed`` (its content does not match its hash or signature),
``reordered`` (stored out of seq order), ``dropped`` (a seq missing from the chain) or
``added`` (a record no signed chain vouches for: a duplicate seq, an authentic record
not chained to its predecessor, or a record past the chain's end built without the
key). A record past the chain's last authentic one is ``changed`` when its content no
longer matches its own hash (edited after it was written) and ``added`` otherwise.
Dropping records off the very end of a chain is visible only against the last seq the
writer (or the central store) knows.

``ForensicWriter`` builds, chains and signs one service's records and appends them to a
``ForensicSink`` (the central API through ``central.forensic.client.ForensicClient``).
Money-moving services refuse new transfers while ``writer.available`` is False.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS: Final = "0" * 64
MAX_EVENT_CHARS: Final = 64
MAX_SUBJECT_CHARS: Final = 128
MAX_SERVICE_CHARS: Final = 64
MAX_WRITES_PER_APPEND: Final = 50  # a writer's records per append (the centre takes 100)
HASHED_FIELDS: Final = ("service", "seq", "at", "event", "subject", "data", "prev_hash")


class MalformedRecord(ValueError):
    """A record's JSON lacks a field or has one of the wrong type."""


class ForensicUnavailable(Exception):
    """The forensic sink did not take a record: money must not move until it does."""


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def utc_iso(moment: datetime) -> str:
    """``2026-11-25T01:02:03.000004+00:00``: every record's ``at`` in one form."""
    if moment.tzinfo is None:
        raise ValueError("only aware datetimes are logged")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def public_key_base64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_base64(text: str) -> Ed25519PublicKey:
    """The key from its base64 raw 32 bytes; ValueError for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a public key is the base64 of 32 raw Ed25519 bytes") from None
    if len(raw) != 32:
        raise ValueError("a public key is the base64 of 32 raw Ed25519 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class Record:
    service: str
    seq: int
    at: str  # ISO 8601 UTC, as written (see utc_iso)
    event: str  # "transfer.prepared", "rule.changed", "service.started"...
    subject: str  # what it is about, e.g. a transfer id ("" for none)
    data: dict[str, Any]
    prev_hash: str
    hash: str
    signature: str  # base64 Ed25519 over bytes.fromhex(hash)

    def hashed_content(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def content_hash(self) -> str:
        """The hash this record's content has (``hash`` should equal it)."""
        return hashlib.sha256(canonical_json(self.hashed_content())).hexdigest()

    def hash_matches(self) -> bool:
        return self.content_hash() == self.hash

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(base64.b64decode(self.signature, validate=True), bytes.fromhex(self.hash))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def authentic(self, keys: Iterable[Ed25519PublicKey]) -> bool:
        """Its content matches its hash, signed by one of ``keys``."""
        return self.hash_matches() and any(self.signed_by(key) for key in keys)

    def to_json(self) -> dict[str, Any]:
        return {**self.hashed_content(), "hash": self.hash, "signature": self.signature}

    @classmethod
    def from_json(cls, body: Any) -> Record:
        if not isinstance(body, dict):
            raise MalformedRecord("a record is a JSON object")
        strings = {"service": MAX_SERVICE_CHARS, "at": 40, "event": MAX_EVENT_CHARS}
        strings |= {"subject": MAX_SUBJECT_CHARS, "prev_hash": 64, "hash": 64, "signature": 100}
        for name, limit in strings.items():
            value = body.get(name)
            if not isinstance(value, str) or len(value) > limit:
                raise MalformedRecord(f"{name!r} is a string of at most {limit} characters")
        seq = body.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise MalformedRecord("'seq' is an integer from 1")
        if not isinstance(body.get("data"), dict):
            raise MalformedRecord("'data' is a JSON object")
        unknown = set(body) - {*HASHED_FIELDS, "hash", "signature"}
        if unknown:
            raise MalformedRecord(f"unknown record fields: {', '.join(sorted(unknown))}")
        return cls(**{name: body[name] for name in (*HASHED_FIELDS, "hash", "signature")})


def build_record(
    key: Ed25519PrivateKey,
    *,
    service: str,
    seq: int,
    at: datetime,
    event: str,
    subject: str = "",
    data: Mapping[str, Any] | None = None,
    prev_hash: str = GENESIS,
) -> Record:
    """A signed record (``data`` must be JSON: it is copied through JSON)."""
    content = json.loads(canonical_json(dict(data or {})))
    unsigned = Record(service, seq, utc_iso(at), event, subject, content, prev_hash, "", "")
    digest = unsigned.content_hash()
    signature = base64.b64encode(key.sign(bytes.fromhex(digest))).decode()
    return Record(service, seq, unsigned.at, event, subject, content, prev_hash, digest, signature)


# --- verification -------------------------------------------------------------------------


class Problem(StrEnum):
    CHANGED = "changed"
    REORDERED = "reordered"
    DROPPED = "dropped"
    ADDED = "added"
    UNVERIFIABLE = "unverifiable"  # no public key for the service


@dataclass(frozen=True)
class Finding:
    service: str
    problem: Problem
    seq: int | None  # the seq concerned (an added record: the seq it claims)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "problem": str(self.problem), "seq": self.seq} | {
            "detail": self.detail
        }


@dataclass(frozen=True)
class ChainReport:
    service: str
    last_seq: int  # the highest seq the chain accounts for
    intact: tuple[tuple[int, int], ...]  # inclusive seq ranges
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        """``dfsp1: 1-41 intact, 42 changed, 43-97 intact`` (added records last)."""
        parts: list[tuple[int, str]] = [(a, f"{_span(a, b)} intact") for a, b in self.intact]
        extra: list[str] = []
        for finding in self.findings:
            if finding.problem is Problem.ADDED or finding.seq is None:
                extra.append(f"{finding.problem} ({finding.detail})")
            else:
                parts.append((finding.seq, f"{finding.seq} {finding.problem}"))
        words = [text for _, text in sorted(parts)] + extra
        return f"{self.service}: {', '.join(words) if words else 'no records'}"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "lastSeq": self.last_seq,
            "intact": [list(span) for span in self.intact],
            "findings": [finding.to_json() for finding in self.findings],
            "summary": self.summary(),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ChainReport:
        findings = tuple(
            Finding(f["service"], Problem(f["problem"]), f["seq"], f["detail"])
            for f in body["findings"]
        )
        intact = tuple((int(a), int(b)) for a, b in body["intact"])
        return cls(body["service"], int(body["lastSeq"]), intact, findings)


@dataclass(frozen=True)
class Report:
    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    @property
    def findings(self) -> list[Finding]:
        return [finding for chain in self.chains for finding in chain.findings]

    def chain(self, service: str) -> ChainReport:
        return next(chain for chain in self.chains if chain.service == service)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "chains": [chain.to_json() for chain in self.chains]}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Report:
        return cls(tuple(ChainReport.from_json(chain) for chain in body["chains"]))


def verify(
    records: Iterable[Record], public_keys: Mapping[str, Sequence[Ed25519PublicKey]]
) -> Report:
    """Check every service's chain in ``records`` (in stored order, services interleaved
    or not) against its public keys (current and previous: any of them may sign)."""
    by_service: dict[str, list[Record]] = {}
    for record in records:
        by_service.setdefault(record.service, []).append(record)
    return Report(
        tuple(
            _verify_chain(service, chain, public_keys.get(service, ()))
            for service, chain in sorted(by_service.items())
        )
    )


def _verify_chain(
    service: str, records: list[Record], keys: Sequence[Ed25519PublicKey]
) -> ChainReport:
    if not keys:
        finding = Finding(service, Problem.UNVERIFIABLE, None, f"no public key for {service!r}")
        return ChainReport(service, max(r.seq for r in records), (), (finding,))
    authentic = [record.authentic(keys) for record in records]
    findings: list[Finding] = []
    status: dict[int, Problem] = {}
    genuine = [(position, records[position].seq) for position, ok in enumerate(authentic) if ok]
    in_order = _longest_increasing(genuine)
    held: dict[int, int] = {}  # seq -> position of the authentic record holding it
    for position, seq in genuine:
        if position in in_order:
            held[seq] = position
    for position, seq in genuine:
        if seq not in held:
            held[seq] = position
            status[seq] = Problem.REORDERED
            findings.append(Finding(service, Problem.REORDERED, seq, f"seq {seq} out of order"))
        elif held[seq] != position:
            what = "a copy" if records[held[seq]] == records[position] else "another version"
            findings.append(_added(records[position], f"{what} of seq {seq}"))
    for seq, position in held.items():
        expected = GENESIS if seq == 1 else _hash_at(records, held, seq - 1)
        if expected is not None and records[position].prev_hash != expected:
            status[seq] = Problem.ADDED
            findings.append(_added(records[position], f"not chained to seq {seq - 1}"))
    last = max(held, default=0)
    suspects = [p for p, ok in enumerate(authentic) if not ok]
    for seq in range(1, last + 1):
        if seq in held:
            continue
        slot = _slot_for(seq, records, held, suspects)
        status[seq] = Problem.DROPPED if slot is None else Problem.CHANGED
        if slot is None:
            findings.append(Finding(service, Problem.DROPPED, seq, f"seq {seq} is missing"))
        else:
            suspects.remove(slot)
            findings.append(_changed(records[slot], seq))
    for position in suspects:  # past the chain's end, or duplicates of held seqs
        record = records[position]
        if record.seq > last and record.seq not in status and not record.hash_matches():
            status[record.seq] = Problem.CHANGED
            findings.append(_changed(record, record.seq))
        else:
            findings.append(_added(record, f"claims seq {record.seq}, not signed in the chain"))
    end = max([last, *status])
    intact = _spans(seq for seq in range(1, end + 1) if seq in held and seq not in status)
    findings.sort(key=lambda f: (f.problem is Problem.ADDED, f.seq or 0))
    return ChainReport(service, end, intact, tuple(findings))


def _hash_at(records: list[Record], held: dict[int, int], seq: int) -> str | None:
    position = held.get(seq)
    return None if position is None else records[position].hash


def _slot_for(
    seq: int, records: list[Record], held: dict[int, int], suspects: list[int]
) -> int | None:
    """The unauthentic record standing where ``seq`` should be, if one does: one that
    claims ``seq``, else one stored between its authentic neighbours."""
    for position in suspects:
        if records[position].seq == seq:
            return position
    before = held.get(seq - 1, -1) if seq > 1 else -1
    after = held.get(seq + 1)
    if after is None or (seq > 1 and seq - 1 not in held):
        return None
    between = [p for p in suspects if before < p < after and records[p].seq not in held]
    return between[0] if between else None


def _longest_increasing(items: list[tuple[int, int]]) -> set[int]:
    """The positions of a longest run of ``(position, seq)`` items whose seqs strictly
    increase in stored order."""
    tails: list[int] = []  # tails[k]: index of the smallest tail of a run of length k+1
    parent: list[int] = [-1] * len(items)
    for index, (_, seq) in enumerate(items):
        low, high = 0, len(tails)
        while low < high:
            middle = (low + high) // 2
            if items[tails[middle]][1] < seq:
                low = middle + 1
            else:
                high = middle
        parent[index] = tails[low - 1] if low else -1
        if low == len(tails):
            tails.append(index)
        else:
            tails[low] = index
    keep: set[int] = set()
    index = tails[-1] if tails else -1
    while index != -1:
        keep.add(items[index][0])
        index = parent[index]
    return keep


def _changed(record: Record, seq: int) -> Finding:
    why = "its content does not match its hash" if not record.hash_matches() else "bad signature"
    claims = "" if record.seq == seq else f" (it claims seq {record.seq})"
    return Finding(record.service, Problem.CHANGED, seq, f"seq {seq}: {why}{claims}")


def _added(record: Record, why: str) -> Finding:
    return Finding(record.service, Problem.ADDED, record.seq, f"seq {record.seq}: {why}")


def _spans(seqs: Iterable[int]) -> tuple[tuple[int, int], ...]:
    spans: list[tuple[int, int]] = []
    for seq in seqs:
        if spans and spans[-1][1] == seq - 1:
            spans[-1] = (spans[-1][0], seq)
        else:
            spans.append((seq, seq))
    return tuple(spans)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


# --- writing ------------------------------------------------------------------------------


class ForensicSink(Protocol):
    """Where a writer's records go (the central API, or the central store itself)."""

    async def last(self, service: str) -> Record | None:
        """The last stored record of ``service`` (None: its chain has not started)."""

    async def append(self, records: Sequence[Record]) -> None:
        """Store ``records`` in order after checking their chain; raises if refused."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


Entry = tuple[str, str, Mapping[str, Any] | None]  # a record to write: event, subject, data


def _json_copy(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` as JSON reads it back (not JSON: TypeError)."""
    copied: dict[str, Any] = json.loads(canonical_json(dict(data or {})))
    return copied


@dataclass(frozen=True)
class _Write:
    """A write waiting for the writer: what to record, and where its answer goes."""

    event: str
    subject: str
    data: Mapping[str, Any]
    answer: asyncio.Future[Record]


@dataclass
class ForensicWriter:
    """One service's forensic log: ``await start()`` once (continues the stored chain
    and logs ``service.started``), then ``await write(event, subject, data)`` (or
    ``write_many`` of records made together).

    A write that the sink does not take (after ``retries`` quick retries) raises
    ``ForensicUnavailable`` and leaves ``available`` False until a later ``write`` or
    ``check`` reaches the sink again; the first record after an outage is
    ``forensic.resumed`` with when it began and how many writes were refused.

    Group commit: writes made while another is at the sink wait for it, then the next
    of them sends all that waited (at most ``MAX_WRITES_PER_APPEND``, chained in the
    order they were made) in one append, which the sink stores whole or not at all.
    Each write still returns only once its record is stored.
    """

    service: str
    private_key: Ed25519PrivateKey
    sink: ForensicSink
    clock: Callable[[], datetime] = _utc_now
    retries: int = 2
    retry_delay: float = 0.05  # seconds, doubled on each retry
    timeout: float = 5.0  # seconds per sink call
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    last_seq: int = field(default=0, init=False)
    last_hash: str = field(default=GENESIS, init=False)
    _available: bool = field(default=False, init=False)
    _synced: bool = field(default=False, init=False)
    _outage: tuple[datetime, int] | None = field(default=None, init=False)  # since, refused
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _waiting: list[_Write] = field(default_factory=list, init=False)

    @property
    def available(self) -> bool:
        return self._available

    async def start(self) -> Record:
        """Continue the chain stored at the sink and log this (re)start."""
        return await self.write("service.started", self.service)

    async def check(self) -> bool:
        """Whether the sink takes records again (after an outage this appends the
        ``forensic.resumed`` record); updates ``available``."""
        async with self._lock:
            try:
                await self._resume()
            except Exception:  # any failure of the sink is an outage
                self._failed(refused=0)
        return self._available

    async def write(
        self, event: str, subject: str = "", data: Mapping[str, Any] | None = None
    ) -> Record:
        (record,) = await self.write_many([(event, subject, data)])
        return record

    async def write_many(self, entries: Sequence[Entry]) -> list[Record]:
        """``write`` of many records (event, subject, data) made together: they wait as
        one, so they go in as few appends as there are groups; the first refusal raises
        (``ForensicUnavailable``), the records of the groups before it are stored."""
        loop = asyncio.get_running_loop()
        writes = [
            _Write(event, subject, _json_copy(data), loop.create_future())
            for event, subject, data in entries  # one not JSON: TypeError, before any
        ]
        self._waiting.extend(writes)
        async with self._lock:
            while writes and not writes[-1].answer.done():  # not all sent by earlier groups
                group = self._waiting[:MAX_WRITES_PER_APPEND]
                del self._waiting[: len(group)]
                await self._write_group(group)
        refusals = [write.answer.exception() for write in writes]  # each one's read
        for refusal in refusals:
            if refusal is not None:
                raise refusal
        return [write.answer.result() for write in writes]

    async def _write_group(self, group: Sequence[_Write]) -> None:
        """Append ``group`` in one call (retried); answer each of its writes."""
        delay = self.retry_delay
        sent: list[Record] = []
        try:
            for attempt in range(self.retries + 1):
                try:
                    await self._resume(sent[-1] if sent else None)
                    if not sent or (sent[-1].seq, sent[-1].hash) != (
                        self.last_seq,
                        self.last_hash,
                    ):  # not stored (a group stored whose answer was lost is not sent again)
                        sent = self._chain(group)
                        await self._append(sent)
                    for write, record in zip(group, sent, strict=True):
                        write.answer.set_result(record)
                    return
                except Exception as error:  # any failure of the sink
                    failure = error
                    self._synced = False
                if attempt < self.retries:
                    await self.sleep(delay)
                    delay *= 2
        except BaseException:  # cancelled: the group may be stored or not; look again
            self._synced = False
            _refuse(group, ForensicUnavailable(f"the write to {self.service}'s log was cut"))
            raise
        self._failed(refused=len(group))
        refused = ForensicUnavailable(f"the forensic log of {self.service} is unavailable")
        refused.__cause__ = failure
        _refuse(group, refused)

    def _chain(self, group: Sequence[_Write]) -> list[Record]:
        """The group's records, each following the one before it (the first the last
        stored one)."""
        records: list[Record] = []
        seq, prev_hash = self.last_seq, self.last_hash
        for write in group:
            record = build_record(
                self.private_key,
                service=self.service,
                seq=seq + 1,
                at=self.clock(),
                event=write.event,
                subject=write.subject,
                data=write.data,
                prev_hash=prev_hash,
            )
            records.append(record)
            seq, prev_hash = record.seq, record.hash
        return records

    async def _resume(self, sent: Record | None = None) -> None:
        """Synchronise with the sink if needed; log the end of an outage."""
        if not self._synced:
            last = await asyncio.wait_for(self.sink.last(self.service), self.timeout)
            if last is not None and sent is not None and last.hash == sent.hash:
                last = sent
            self.last_seq, self.last_hash = (0, GENESIS) if last is None else (last.seq, last.hash)
            self._synced = True
        if self._outage is not None:
            since, refused = self._outage
            resumed = {"since": utc_iso(since), "refusedWrites": refused}
            await self._append([self._next("forensic.resumed", self.service, resumed)])
            self._outage = None
        self._available = True

    def _next(self, event: str, subject: str, data: Mapping[str, Any] | None) -> Record:
        return build_record(
            self.private_key,
            service=self.service,
            seq=self.last_seq + 1,
            at=self.clock(),
            event=event,
            subject=subject,
            data=data,
            prev_hash=self.last_hash,
        )

    async def _append(self, records: Sequence[Record]) -> None:
        await asyncio.wait_for(self.sink.append(records), self.timeout)
        self.last_seq, self.last_hash = records[-1].seq, records[-1].hash

    def _failed(self, *, refused: int) -> None:
        self._available = False
        self._synced = False
        since, before = self._outage or (self.clock(), 0)
        self._outage = (since, before + refused)


def _refuse(group: Sequence[_Write], error: ForensicUnavailable) -> None:
    for write in group:
        if not write.answer.done():
            write.answer.set_exception(error)
