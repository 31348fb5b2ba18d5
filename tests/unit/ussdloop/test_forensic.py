"""The forensic log's records and chain: any chain verifies; a changed, reordered,
dropped or added record is found and named and the rest is reported intact; the writer
continues its chain after a restart, logs its restarts, and says when its sink is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.support import asyncio_test
from ussdloop.forensic import (
    GENESIS,
    MAX_WRITES_PER_APPEND,
    ForensicUnavailable,
    ForensicWriter,
    Problem,
    Record,
    build_record,
    canonical_json,
    public_key_base64,
    public_key_from_base64,
    verify,
)

KEYS = {"dfsp1": Ed25519PrivateKey.generate(), "dfsp2": Ed25519PrivateKey.generate()}
PUBLIC = {service: [key.public_key()] for service, key in KEYS.items()}
INTRUDER = Ed25519PrivateKey.generate()
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def chain(service: str, length: int) -> list[Record]:
    records: list[Record] = []
    prev = GENESIS
    for seq in range(1, length + 1):
        record = build_record(
            KEYS[service],
            service=service,
            seq=seq,
            at=T0 + timedelta(seconds=seq),
            event="transfer.prepared",
            subject=f"t-{seq}",
            data={"amount": f"{seq}.00", "n": seq},
            prev_hash=prev,
        )
        records.append(record)
        prev = record.hash
    return records


CHAINS = {length: chain("dfsp1", length) for length in range(1, 31)}
OTHER = chain("dfsp2", 7)


def with_other_service(records: list[Record], seed: int) -> list[Record]:
    """``records`` interleaved with an untouched dfsp2 chain (each keeps its order)."""
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(len(records) + len(OTHER)), len(OTHER)))
    mine, other, merged = iter(records), iter(OTHER), []
    for index in range(len(records) + len(OTHER)):
        merged.append(next(other) if index in slots else next(mine))
    return merged


def assert_only(records: list[Record], problem: Problem, seqs: set[int], length: int) -> None:
    report = verify(records, PUBLIC)
    dfsp1 = report.chain("dfsp1")
    assert {f.problem for f in dfsp1.findings} == {problem}, dfsp1.summary()
    assert {f.seq for f in dfsp1.findings} == seqs, dfsp1.summary()
    intact = {seq for first, last in dfsp1.intact for seq in range(first, last + 1)}
    expected = set(range(1, length + 1)) - (seqs if problem is not Problem.ADDED else set())
    assert intact == expected, dfsp1.summary()
    assert report.chain("dfsp2").intact == ((1, 7),) and report.chain("dfsp2").ok
    assert not report.ok


lengths = st.integers(min_value=1, max_value=30)


@given(lengths, st.integers())
def test_any_chain_verifies_intact(length: int, seed: int) -> None:
    report = verify(with_other_service(CHAINS[length], seed), PUBLIC)
    assert report.ok and report.findings == []
    assert report.chain("dfsp1").intact == ((1, length),)
    assert (
        report.chain("dfsp1").summary() == f"dfsp1: {'1' if length == 1 else f'1-{length}'} intact"
    )


CHANGES = {
    "data": lambda r: dataclasses.replace(r, data={**r.data, "amount": "1000000.00"}),
    "event": lambda r: dataclasses.replace(r, event="transfer.rejected"),
    "subject": lambda r: dataclasses.replace(r, subject="t-other"),
    "at": lambda r: dataclasses.replace(r, at="2020-01-01T00:00:00.000000+00:00"),
    "prev_hash": lambda r: dataclasses.replace(r, prev_hash="f" * 64),
    "seq": lambda r: dataclasses.replace(r, seq=r.seq + 1000),
}


@given(lengths, st.data(), st.sampled_from(sorted(CHANGES)), st.booleans(), st.integers())
def test_a_changed_record_is_named_and_the_rest_is_intact(
    length: int, data: st.DataObject, field: str, rehash: bool, seed: int
) -> None:
    records = list(CHAINS[length])
    index = data.draw(st.integers(0, length - 1))
    last = index == length - 1
    if last and field == "seq":
        field = "data"
    changed = CHANGES[field](records[index])
    if rehash and not last:  # re-hashed (but not re-signed: the key is not the attacker's)
        changed = dataclasses.replace(changed, hash=changed.content_hash())
    records[index] = changed
    assert_only(with_other_service(records, seed), Problem.CHANGED, {index + 1}, length)


@given(st.integers(3, 30), st.data(), st.integers())
def test_a_reordered_record_is_named_and_the_rest_is_intact(
    length: int, data: st.DataObject, seed: int
) -> None:
    records = list(CHAINS[length])
    source = data.draw(st.integers(0, length - 1))
    target = data.draw(st.integers(0, length - 1).filter(lambda t: t != source))
    moved = records.pop(source)
    records.insert(target, moved)
    report = verify(with_other_service(records, seed), PUBLIC).chain("dfsp1")
    assert [f.problem for f in report.findings] == [Problem.REORDERED], report.summary()
    (named,) = [f.seq for f in report.findings]
    adjacent = abs(source - target) == 1
    assert named == moved.seq or (adjacent and named == records[source].seq), report.summary()
    intact = {seq for first, last in report.intact for seq in range(first, last + 1)}
    assert intact == set(range(1, length + 1)) - {named}


@given(st.integers(2, 30), st.data(), st.integers())
def test_a_dropped_record_is_named_and_the_rest_is_intact(
    length: int, data: st.DataObject, seed: int
) -> None:
    records = list(CHAINS[length])
    index = data.draw(st.integers(0, length - 2))  # dropping the very last is not visible
    del records[index]
    assert_only(with_other_service(records, seed), Problem.DROPPED, {index + 1}, length)


@given(lengths, st.data(), st.sampled_from(["copy", "forged duplicate", "forged next"]))
def test_an_added_record_is_named_and_the_chain_is_intact(
    length: int, data: st.DataObject, kind: str
) -> None:
    records = list(CHAINS[length])
    original = records[data.draw(st.integers(0, length - 1))]
    if kind == "copy":
        added = original
    elif kind == "forged duplicate":
        added = build_record(
            INTRUDER,
            service="dfsp1",
            seq=original.seq,
            at=T0,
            event="transfer.executed",
            subject=original.subject,
            prev_hash=original.prev_hash,
        )
    else:
        added = build_record(
            INTRUDER, service="dfsp1", seq=length + 1, at=T0, event="x", prev_hash=records[-1].hash
        )
    records.insert(data.draw(st.integers(0, length)), added)
    assert_only(with_other_service(records, 1), Problem.ADDED, {added.seq}, length)


def test_the_report_names_the_intact_ranges_around_a_change() -> None:
    records = chain("dfsp1", 97)
    records[41] = dataclasses.replace(records[41], data={"amount": "999.00"})
    report = verify(records, PUBLIC)
    assert report.chain("dfsp1").summary() == "dfsp1: 1-41 intact, 42 changed, 43-97 intact"
    assert report.to_json()["ok"] is False
    assert type(report).from_json(report.to_json()) == report


def test_swapped_records_and_an_unknown_service_are_named() -> None:
    records = chain("dfsp1", 8)
    records[2], records[6] = records[6], records[2]
    report = verify(records, PUBLIC).chain("dfsp1")
    assert {(f.problem, f.seq) for f in report.findings} == {
        (Problem.REORDERED, 3),
        (Problem.REORDERED, 7),
    }
    assert report.summary() == "dfsp1: 1-2 intact, 3 reordered, 4-6 intact, 7 reordered, 8 intact"
    unknown = verify(chain("dfsp1", 2), {}).chain("dfsp1")
    assert [f.problem for f in unknown.findings] == [Problem.UNVERIFIABLE]


def test_a_record_hashes_its_canonical_json_and_is_signed_over_the_hash() -> None:
    record = chain("dfsp1", 1)[0]
    body = {k: v for k, v in record.to_json().items() if k not in ("hash", "signature")}
    assert canonical_json(body).startswith(b'{"at":"2026-11-25T08:00:01.000000+00:00","data":')
    assert record.hash == record.content_hash() and len(record.hash) == 64
    assert Record.from_json(record.to_json()) == record
    key = public_key_from_base64(public_key_base64(KEYS["dfsp1"]))
    assert record.signed_by(key) and not record.signed_by(INTRUDER.public_key())
    with pytest.raises(ValueError):
        public_key_from_base64("c2hvcnQ=")


# --- the writer ---------------------------------------------------------------------------


class MemorySink:
    """Stores records like the central store: only a record chained to the last one."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.down = False
        self.lose_answers = False
        self.appends: list[int] = []  # the number of records of each append
        self.gate: asyncio.Event | None = None  # set: appends go on

    async def last(self, service: str) -> Record | None:
        if self.down:
            raise ConnectionError("sink down")
        mine = [r for r in self.records if r.service == service]
        return mine[-1] if mine else None

    async def append(self, records: Sequence[Record]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("sink down")
        self.appends.append(len(records))
        for record in records:
            last = await self.last(record.service)
            assert record.seq == (last.seq + 1 if last else 1)
            assert record.prev_hash == (last.hash if last else GENESIS)
            self.records.append(record)
        if self.lose_answers:
            raise TimeoutError("answer lost")


def writer(sink: MemorySink, sleeps: list[float]) -> ForensicWriter:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return ForensicWriter("dfsp1", KEYS["dfsp1"], sink, sleep=sleep)


@asyncio_test
async def test_a_restarted_writer_continues_its_chain_and_logs_the_restart() -> None:
    sink, sleeps = MemorySink(), []
    first = writer(sink, sleeps)
    assert not first.available
    await first.start()
    await first.write("transfer.prepared", "t-1", {"amount": "5.00"})
    second = writer(sink, sleeps)
    started = await second.start()
    assert (started.seq, started.event, second.available) == (3, "service.started", True)

    assert [r.event for r in sink.records] == [
        "service.started",
        "transfer.prepared",
        "service.started",
    ]
    assert verify(sink.records, PUBLIC).ok


@asyncio_test
async def test_a_writer_whose_sink_is_down_refuses_and_logs_the_outage_when_back() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.down = True
    with pytest.raises(ForensicUnavailable):
        await log.write("transfer.prepared", "t-1")
    assert sleeps == [0.05, 0.1] and not log.available
    assert not await log.check()
    sink.down = False
    assert await log.check() and log.available
    await log.write("transfer.prepared", "t-2")

    assert [r.event for r in sink.records] == [
        "service.started",
        "forensic.resumed",
        "transfer.prepared",
    ]
    assert sink.records[1].data["refusedWrites"] == 1
    assert verify(sink.records, PUBLIC).ok
    with pytest.raises(TypeError):  # a caller's mistake, not an outage
        await log.write("transfer.prepared", "t-3", {"at": datetime.now(UTC)})
    assert log.available


@asyncio_test
async def test_a_record_stored_whose_answer_was_lost_is_not_written_twice() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.lose_answers = True
    record = await log.write("transfer.prepared", "t-1")
    sink.lose_answers = False
    assert record.seq == 2 and log.available
    await log.write("transfer.executed", "t-1")

    assert [r.seq for r in sink.records] == [1, 2, 3]
    assert verify(sink.records, PUBLIC).ok


@asyncio_test
async def test_writes_made_while_one_is_at_the_sink_go_together_in_the_next_append() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.gate = asyncio.Event()
    writes = [
        asyncio.ensure_future(log.write("transfer.held", f"t-{n}", {"n": n})) for n in range(5)
    ]
    await asyncio.sleep(0)  # the first write is at the sink, the others wait
    sink.gate.set()
    records = await asyncio.gather(*writes)

    assert sink.appends == [1, 1, 4]  # service.started, t-0, then the four that waited
    assert [(r.seq, r.subject, r.data) for r in records] == [
        (n + 2, f"t-{n}", {"n": n}) for n in range(5)
    ]
    assert sink.records[1:] == records and verify(sink.records, PUBLIC).ok


@asyncio_test
async def test_each_write_of_a_refused_group_is_refused_and_counted() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.gate = asyncio.Event()
    first = asyncio.ensure_future(log.write("transfer.held", "t-0"))
    await asyncio.sleep(0)
    group = [asyncio.ensure_future(log.write("transfer.held", f"t-{n}")) for n in (1, 2)]
    await asyncio.sleep(0)
    sink.down = True
    sink.gate.set()
    outcomes = await asyncio.gather(first, *group, return_exceptions=True)
    assert all(isinstance(o, ForensicUnavailable) for o in outcomes) and not log.available
    await assert_resumed_after_refusing(log, sink, 3)


async def assert_resumed_after_refusing(
    log: ForensicWriter, sink: MemorySink, refused: int
) -> None:
    """Once the sink is back, the next write logs the outage's end with ``refused``."""
    sink.down = False
    await log.write("transfer.held", "t-3")
    assert [r.event for r in sink.records] == [
        "service.started",
        "forensic.resumed",
        "transfer.held",
    ]
    assert sink.records[1].data["refusedWrites"] == refused
    assert verify(sink.records, PUBLIC).ok


@asyncio_test
async def test_a_group_stored_whose_answer_was_lost_is_not_written_twice() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.gate, sink.lose_answers = asyncio.Event(), True
    writes = [asyncio.ensure_future(log.write("transfer.held", f"t-{n}")) for n in range(3)]
    await asyncio.sleep(0)
    sink.gate.set()
    records = await asyncio.gather(*writes)
    sink.lose_answers = False
    await log.write("transfer.committed", "t-0")

    assert [r.seq for r in records] == [2, 3, 4]
    assert [r.seq for r in sink.records] == [1, 2, 3, 4, 5]
    assert verify(sink.records, PUBLIC).ok


@asyncio_test
async def test_records_written_together_go_in_one_append_per_group_in_their_order() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    entries = [("transfer.held", f"t-{n}", {"n": n}) for n in range(MAX_WRITES_PER_APPEND + 3)]
    records = await log.write_many(entries)

    assert sink.appends == [1, MAX_WRITES_PER_APPEND, 3]
    assert [(r.event, r.subject, r.data) for r in records] == entries
    assert sink.records[1:] == records and verify(sink.records, PUBLIC).ok
    assert await log.write_many([]) == []
    with pytest.raises(TypeError):  # one not JSON: none is written
        await log.write_many([("transfer.held", "t-x", {}), ("x", "y", {"at": datetime.now(UTC)})])
    assert len(sink.records) == 1 + len(entries)


@asyncio_test
async def test_records_written_together_while_the_sink_is_down_are_refused() -> None:
    sink, sleeps = MemorySink(), []
    log = writer(sink, sleeps)
    await log.start()
    sink.down = True
    with pytest.raises(ForensicUnavailable):
        await log.write_many([("transfer.held", f"t-{n}", None) for n in range(3)])
    await assert_resumed_after_refusing(log, sink, 3)
