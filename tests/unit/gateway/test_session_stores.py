"""The session store contract, run against the in-memory store and against Redis.

Time is a ``task.Clock``: a record is live while the clock is before its expiry, in
both stores (Redis' own TTL only collects garbage); a remembered language never expires.
Redis tests need USSDLOOP_TEST_REDIS and use a key prefix of their own, removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
import redis
from twisted.internet import task

from gateway.ussd.records import (
    MAX_LANGUAGE_CHARS,
    DialogueKey,
    SaveResult,
    SessionRecord,
    SessionState,
)
from gateway.ussd.stores import MemorySessionStore, RedisSessionStore, SessionStore
from tests.support import asyncio_test
from ussdloop.aio import as_deferred

StoreFactory = Callable[[task.Clock], SessionStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if request.param == "memory":
        yield lambda clock: MemorySessionStore(clock.seconds)
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:{{sessions}}:"
    stores: list[RedisSessionStore] = []

    def make(clock: task.Clock) -> SessionStore:
        store = RedisSessionStore.from_url(url, clock.seconds, prefix=prefix)
        stores.append(store)
        return store

    yield make
    for store in stores:
        pytest_twisted.blockon(as_deferred(store.close()))
    with redis.Redis.from_url(url) as client:
        leftovers = list(client.scan_iter(match=f"test:{prefix.split(':')[1]}:*"))
        if leftovers:
            client.delete(*leftovers)


def record(msisdn: str = "256700000001", session: str | None = "7", **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "key": DialogueKey(msisdn, session),
        "session_id": uuid.uuid4().hex[:16],
        "service_code": "*123#",
        "state": SessionState.AWAITING_SUBSCRIBER,
        "created_at": 0.0,
        "screen_deadline": 30.0,
        "dialogue_deadline": 180.0,
        "dialogue_state": {"_engine": {"screen": "home"}, "name": "Zoë"},
        "last_screen": "Welcome",
    }
    values.update(fields)
    return SessionRecord(**values)


@asyncio_test
async def test_a_saved_record_loads_back_equal(make_store: StoreFactory) -> None:
    store = make_store(task.Clock())
    saved = record(language="fr", answers=2, screens=3, network_initiated=True)
    assert await store.save(saved, 35.0) is SaveResult.CREATED
    assert await store.load(saved.key) == saved
    assert await store.load(DialogueKey("256700000002", "7")) is None
    assert await store.count() == 1


@asyncio_test
async def test_a_record_expires_at_its_ttl_on_the_clock(make_store: StoreFactory) -> None:
    clock = task.Clock()
    store = make_store(clock)
    saved = record()
    await store.save(saved, 35.0)
    clock.advance(34.9)
    assert await store.load(saved.key) == saved
    clock.advance(0.1)
    assert await store.load(saved.key) is None
    assert await store.count() == 0
    assert await store.delete(saved.key) is False


@asyncio_test
async def test_saving_a_live_key_again_replaces_it(make_store: StoreFactory) -> None:
    clock = task.Clock()
    store = make_store(clock)
    first = record()
    await store.save(first, 35.0)
    second = record(last_screen="Enter your name:", screens=2)
    assert await store.save(second, 35.0) is SaveResult.REPLACED
    assert await store.load(first.key) == second
    assert await store.count() == 1
    clock.advance(40.0)
    assert await store.save(first, 35.0) is SaveResult.CREATED  # the old one had expired


@asyncio_test
async def test_the_limit_refuses_new_keys_but_not_live_ones(make_store: StoreFactory) -> None:
    clock = task.Clock()
    store = make_store(clock)
    a, b, c = record("256700000001"), record("256700000002"), record("256700000003")
    assert await store.save(a, 10.0, limit=2) is SaveResult.CREATED
    clock.advance(5.0)
    assert await store.save(b, 10.0, limit=2) is SaveResult.CREATED
    assert await store.save(c, 10.0, limit=2) is SaveResult.REFUSED
    assert await store.load(c.key) is None
    assert await store.save(a, 20.0, limit=2) is SaveResult.REPLACED  # now until t=25
    assert await store.count() == 2
    clock.advance(10.0)  # t=15: b expires
    assert await store.save(c, 10.0, limit=2) is SaveResult.CREATED
    assert await store.count() == 2


@asyncio_test
async def test_delete_says_whether_a_live_record_was_there(make_store: StoreFactory) -> None:
    store = make_store(task.Clock())
    saved = record()
    await store.save(saved, 35.0)
    assert await store.delete(saved.key) is True
    assert await store.delete(saved.key) is False
    assert await store.load(saved.key) is None
    assert await store.count() == 0


@asyncio_test
async def test_a_reused_session_id_stays_separate_per_msisdn_and_channel(
    make_store: StoreFactory,
) -> None:
    store = make_store(task.Clock())
    alice = record("256700000001", "7", last_screen="alice")
    bob = record("256700000002", "7", last_screen="bob")
    http = record("256700000001", "7", last_screen="http")
    http.key = DialogueKey("256700000001", "7", channel="callback")
    tricky = record("2567:7", None, last_screen="tricky")  # ":" cannot forge another key
    for saved in (alice, bob, http, tricky):
        assert await store.save(saved, 35.0) is SaveResult.CREATED
    assert (await store.load(alice.key)) == alice
    assert (await store.load(bob.key)) == bob
    assert (await store.load(http.key)) == http
    assert (await store.load(DialogueKey("2567:7"))) == tricky
    assert await store.count() == 4


@asyncio_test
async def test_two_redis_stores_with_one_prefix_share_sessions_and_the_bound(
    redis_url: str,
) -> None:
    clock = task.Clock()
    prefix = f"test:{uuid.uuid4().hex}:{{sessions}}:"
    node1 = RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix)
    node2 = RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix)
    try:
        saved = record()
        await node1.save(saved, 35.0, limit=1)
        assert await node2.load(saved.key) == saved
        assert await node2.save(record("256700000009"), 35.0, limit=1) is SaveResult.REFUSED
        assert await node2.delete(saved.key) is True
        assert await node1.count() == 0
    finally:
        await node1.clear()
        await node1.close()
        await node2.close()


@asyncio_test
async def test_the_memory_store_keeps_its_expiry_heap_bounded() -> None:
    clock = task.Clock()
    store = MemorySessionStore(clock.seconds)
    saved = record()
    for _ in range(5000):
        await store.save(saved, 35.0)
    assert await store.count() == 1
    assert len(store._expiries) <= 2 * 1 + 1024 + 1


@asyncio_test
async def test_a_language_is_remembered_per_msisdn_and_never_expires(
    make_store: StoreFactory,
) -> None:
    clock = task.Clock()
    store = make_store(clock)
    assert await store.load_language("256700000001") is None
    await store.save_language("256700000001", "fr")
    await store.save_language("+256 700 000 002", "en")  # any phone string is a key
    clock.advance(10 * 365 * 86400.0)
    assert await store.load_language("256700000001") == "fr"
    assert await store.load_language("+256 700 000 002") == "en"
    assert await store.load_language("256700000003") is None
    await store.save_language("256700000001", "en")
    assert await store.load_language("256700000001") == "en"
    assert await store.count() == 0  # languages are not sessions


@asyncio_test
async def test_a_language_outlives_the_sessions_of_its_msisdn(make_store: StoreFactory) -> None:
    clock = task.Clock()
    store = make_store(clock)
    first, second = record("256700000001", "7"), record("256700000001", "8")
    await store.save(first, 35.0)
    await store.save(second, 35.0)
    await store.save_language("256700000001", "fr")
    assert await store.delete(first.key) is True
    clock.advance(40.0)  # the second one expires
    assert await store.count() == 0
    assert await store.load_language("256700000001") == "fr"


@asyncio_test
async def test_an_empty_or_overlong_language_code_is_refused(make_store: StoreFactory) -> None:
    store = make_store(task.Clock())
    for language in ("", "x" * (MAX_LANGUAGE_CHARS + 1)):
        with pytest.raises(ValueError, match="language"):
            await store.save_language("256700000001", language)
    assert await store.load_language("256700000001") is None


@asyncio_test
async def test_beyond_its_bound_the_memory_store_forgets_the_least_recent_language() -> None:
    store = MemorySessionStore(task.Clock().seconds, max_languages=2)
    await store.save_language("256700000001", "fr")
    await store.save_language("256700000002", "fr")
    assert await store.load_language("256700000001") == "fr"  # now the most recent
    await store.save_language("256700000003", "en")
    assert await store.load_language("256700000002") is None
    assert await store.load_language("256700000001") == "fr"
    assert await store.load_language("256700000003") == "en"
    with pytest.raises(ValueError, match="max_languages"):
        MemorySessionStore(task.Clock().seconds, max_languages=0)


@asyncio_test
async def test_a_full_redis_store_updates_known_languages_but_adds_no_new_ones(
    redis_url: str,
) -> None:
    clock = task.Clock()
    prefix = f"test:{uuid.uuid4().hex}:{{sessions}}:"
    node1 = RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix, max_languages=2)
    node2 = RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix, max_languages=2)
    try:
        await node1.save_language("256700000001", "fr")
        assert await node2.load_language("256700000001") == "fr"  # shared by the nodes
        await node2.save_language("256700000002", "fr")
        await node1.save_language("256700000003", "fr")  # full: not remembered
        assert await node1.load_language("256700000003") is None
        await node1.save_language("256700000001", "en")  # a known MSISDN still changes
        assert await node2.load_language("256700000001") == "en"
        await node1.clear()
        assert await node2.load_language("256700000002") is None
    finally:
        await node1.clear()
        await node1.close()
        await node2.close()
