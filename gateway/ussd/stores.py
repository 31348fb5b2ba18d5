"""Where USSD sessions live between screens: in this process, or in Redis for many nodes.

Both stores keep each record as JSON with an expiry on the injected clock (a record is
live while ``seconds() < expires_at``) and count the live records, so ``save`` can
refuse a new key once ``limit`` are live. The Redis store does that atomically (one Lua
script per call) with a sorted set of keys scored by expiry, so several gateway nodes
serving one carrier account share sessions and one bound; Redis' own key TTL only
collects the garbage.

Each store also remembers every subscriber's chosen language by MSISDN, with no expiry:
at most ``max_languages`` of them. The memory store forgets the least recently used
beyond that; the Redis store (one hash under the prefix) keeps updating the MSISDNs it
has and stops adding new ones, with a warning.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from twisted.logger import Logger

from gateway.ussd.records import MAX_LANGUAGE_CHARS, DialogueKey, SaveResult, SessionRecord

Seconds = Callable[[], float]
DEFAULT_REDIS_PREFIX: Final = "ussdloop:{sessions}:"  # the hash tag keeps one cluster slot
MAX_LANGUAGES: Final = 1_000_000  # subscribers whose language a store remembers

_log = Logger(namespace="gateway.ussd.stores")


class SessionStore(Protocol):
    async def load(self, key: DialogueKey) -> SessionRecord | None:
        """The live record under ``key``, or None."""
        ...

    async def save(
        self, record: SessionRecord, ttl: float, *, limit: int | None = None
    ) -> SaveResult:
        """Keep ``record`` under its key for ``ttl`` seconds, replacing any record there.

        With ``limit``, a record whose key is not live is refused when ``limit`` records
        are live (a live key is always replaced: the bound counts keys, not saves).
        """
        ...

    async def delete(self, key: DialogueKey) -> bool:
        """Remove the record under ``key``; whether a live one was there."""
        ...

    async def count(self) -> int:
        """How many records are live."""
        ...

    async def load_language(self, msisdn: str) -> str | None:
        """The language last saved for ``msisdn`` (None: none, or forgotten)."""
        ...

    async def save_language(self, msisdn: str, language: str) -> None:
        """Remember ``language`` for ``msisdn``, with no expiry (``ValueError`` if too long)."""
        ...

    async def close(self) -> None: ...


def _check_language(language: str) -> None:
    if not 0 < len(language) <= MAX_LANGUAGE_CHARS:
        raise ValueError(f"a language code has 1 to {MAX_LANGUAGE_CHARS} characters")


def _check_bound(max_languages: int) -> None:
    if max_languages <= 0:
        raise ValueError(f"max_languages must be positive, got {max_languages}")


def _parse(key: str, value: str | bytes) -> SessionRecord | None:
    try:
        return SessionRecord.from_json(value)
    except ValueError as error:
        _log.error("ussd_session_record_unreadable key={key} error={error}", key=key, error=error)
        return None


class MemorySessionStore:
    """Sessions in a dict, expiring on the injected clock; for one gateway node."""

    def __init__(self, seconds: Seconds, *, max_languages: int = MAX_LANGUAGES) -> None:
        _check_bound(max_languages)
        self._seconds = seconds
        self._records: dict[str, tuple[float, str]] = {}  # key -> (expires_at, JSON)
        self._expiries: list[tuple[float, str]] = []  # heap; stale entries skipped on pop
        self._languages: OrderedDict[str, str] = OrderedDict()  # MSISDN -> language, LRU
        self._max_languages = max_languages

    async def load(self, key: DialogueKey) -> SessionRecord | None:
        name = str(key)
        entry = self._records.get(name)
        if entry is None or entry[0] <= self._seconds():
            return None
        return _parse(name, entry[1])

    async def save(
        self, record: SessionRecord, ttl: float, *, limit: int | None = None
    ) -> SaveResult:
        self._purge()
        name = str(record.key)
        live = name in self._records
        if limit is not None and not live and len(self._records) >= limit:
            return SaveResult.REFUSED
        expires_at = self._seconds() + ttl
        self._records[name] = (expires_at, record.to_json())
        heapq.heappush(self._expiries, (expires_at, name))
        if len(self._expiries) > 2 * len(self._records) + 1024:
            self._expiries = [(at, n) for n, (at, _) in self._records.items()]
            heapq.heapify(self._expiries)
        return SaveResult.REPLACED if live else SaveResult.CREATED

    async def delete(self, key: DialogueKey) -> bool:
        self._purge()
        return self._records.pop(str(key), None) is not None

    async def count(self) -> int:
        self._purge()
        return len(self._records)

    async def load_language(self, msisdn: str) -> str | None:
        language = self._languages.get(msisdn)
        if language is not None:
            self._languages.move_to_end(msisdn)
        return language

    async def save_language(self, msisdn: str, language: str) -> None:
        _check_language(language)
        self._languages[msisdn] = language
        self._languages.move_to_end(msisdn)
        while len(self._languages) > self._max_languages:
            self._languages.popitem(last=False)

    async def close(self) -> None:
        self._records.clear()
        self._expiries.clear()
        self._languages.clear()

    def _purge(self) -> None:
        now = self._seconds()
        expiries, records = self._expiries, self._records
        while expiries and expiries[0][0] <= now:
            expires_at, name = heapq.heappop(expiries)
            entry = records.get(name)
            if entry is not None and entry[0] == expires_at:
                del records[name]


# KEYS[1] the index (sorted set of keys by expiry), KEYS[2] the record.
# ARGV: now, expires_at, ttl in ms, the JSON, limit (-1: none), the index member.
_SAVE: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZSCORE', KEYS[1], ARGV[6])
local limit = tonumber(ARGV[5])
if not live and limit >= 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[6])
if live then return 2 end
return 1
"""
# KEYS[1] the index, KEYS[2] the record. ARGV: now, the index member.
_DELETE: Final = """
local expires_at = redis.call('ZSCORE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[2])
if expires_at and tonumber(expires_at) > tonumber(ARGV[1]) then return 1 end
return 0
"""
# KEYS[1] the index, KEYS[2] the record. ARGV: now, the index member.
_LOAD: Final = """
local expires_at = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not expires_at or tonumber(expires_at) <= tonumber(ARGV[1]) then return false end
return redis.call('GET', KEYS[2])
"""
# KEYS[1] the index. ARGV: now.
_COUNT: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""
# KEYS[1] the languages hash. ARGV: the MSISDN, the language, the most MSISDNs kept.
_SAVE_LANGUAGE: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
_RESULTS: Final = {0: SaveResult.REFUSED, 1: SaveResult.CREATED, 2: SaveResult.REPLACED}


class RedisSessionStore:
    """Sessions in Redis (``redis.asyncio``), shared by every gateway node with the prefix."""

    def __init__(
        self,
        client: aioredis.Redis,
        seconds: Seconds,
        *,
        prefix: str = DEFAULT_REDIS_PREFIX,
        owns_client: bool = False,
        max_languages: int = MAX_LANGUAGES,
    ) -> None:
        _check_bound(max_languages)
        self._client = client
        self._seconds = seconds
        self._prefix = prefix
        self._index = f"{prefix}index"
        self._languages = f"{prefix}languages"  # a hash: MSISDN -> language, no TTL
        self._max_languages = max_languages
        self._owns_client = owns_client
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._load = client.register_script(_LOAD)
        self._count = client.register_script(_COUNT)
        self._save_language = client.register_script(_SAVE_LANGUAGE)

    @classmethod
    def from_url(
        cls,
        url: str,
        seconds: Seconds,
        *,
        prefix: str = DEFAULT_REDIS_PREFIX,
        max_languages: int = MAX_LANGUAGES,
    ) -> RedisSessionStore:
        client = aioredis.Redis.from_url(url)
        return cls(client, seconds, prefix=prefix, owns_client=True, max_languages=max_languages)

    async def load(self, key: DialogueKey) -> SessionRecord | None:
        name = str(key)
        value: Any = await self._load(keys=self._keys(name), args=[self._seconds(), name])
        return None if value is None else _parse(name, value)

    async def save(
        self, record: SessionRecord, ttl: float, *, limit: int | None = None
    ) -> SaveResult:
        name = str(record.key)
        now = self._seconds()
        args: list[str | float | int] = [
            now,
            now + ttl,
            max(1, math.ceil(ttl * 1000)),
            record.to_json(),
            -1 if limit is None else limit,
            name,
        ]
        result: Any = await self._save(keys=self._keys(name), args=args)
        return _RESULTS[int(result)]

    async def delete(self, key: DialogueKey) -> bool:
        name = str(key)
        result: Any = await self._delete(keys=self._keys(name), args=[self._seconds(), name])
        return bool(result)

    async def count(self) -> int:
        result: Any = await self._count(keys=[self._index], args=[self._seconds()])
        return int(result)

    async def load_language(self, msisdn: str) -> str | None:
        value: Any = await self._client.hget(self._languages, msisdn)
        if value is None:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    async def save_language(self, msisdn: str, language: str) -> None:
        _check_language(language)
        args: list[str | int] = [msisdn, language, self._max_languages]
        saved: Any = await self._save_language(keys=[self._languages], args=args)
        if not int(saved):
            _log.warn(
                "ussd_language_not_remembered_full max_languages={max_languages}",
                max_languages=self._max_languages,
            )

    async def clear(self) -> None:
        """Remove every record and language under this prefix (tests, decommissioning)."""
        async for name in self._client.scan_iter(match=f"{_glob_escape(self._prefix)}*"):
            await self._client.delete(name)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _keys(self, name: str) -> list[str]:
        return [self._index, f"{self._prefix}s:{name}"]


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
