"""The key management service: which public key each service signs its forensic records
with, and the central service's own signing key.

A DFSP registers keys for the services named after it (``dfsp1``, ``dfsp1.gateway``),
the operator for the central ones (``central``, ``central.<part>``). Once a service has
a key, only the same registrant may rotate it; previous keys are kept with the moment
each became valid, so older records still verify.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.errors import AlreadyExistsError, ForbiddenError, NotFoundError, ValidationError
from central.kms.store import PrivateKeyRow, PublicKeyRow
from ussdloop import db
from ussdloop.forensic import public_key_base64, public_key_from_base64

SERVICE: Final = re.compile(r"[A-Za-z0-9_~-]{1,20}(\.[A-Za-z0-9_~-]{1,20}){0,2}")
OPERATOR: Final = "operator"  # the owner name of the operator's keys
CENTRAL: Final = "central"


def check_service_name(service: str) -> str:
    if not SERVICE.fullmatch(service):
        raise ValidationError(
            "a service is its owner's name, optionally with parts: dfsp1, dfsp1.gateway"
        )
    return service


def owner_of(service: str) -> str:
    """Who may register ``service``'s keys: the DFSP it is named after, or the operator
    for ``central`` and ``central.<part>``."""
    root = check_service_name(service).split(".")[0]
    return OPERATOR if root == CENTRAL else root


@dataclass(frozen=True)
class PublicKey:
    service: str
    public_key: str  # base64 of the raw 32 bytes
    owner: str
    valid_from: datetime


@dataclass(frozen=True)
class ServiceKeys:
    service: str
    current: PublicKey
    previous: tuple[PublicKey, ...]  # newest first


class Kms:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def register(self, service: str, public_key: str, *, caller: str) -> ServiceKeys:
        """Set or rotate ``service``'s key; ``caller`` is a DFSP's name or ``OPERATOR``.
        The current key again is no change."""
        if owner_of(service) != caller:
            raise ForbiddenError(f"{caller!r} may not register keys for {service!r}")
        try:
            public_key_from_base64(public_key)
        except ValueError as error:
            raise ValidationError(f"'publicKey': {error}") from None
        try:
            async with self._sessions.begin() as session:
                rows = await _rows(session, service, lock=True)
                if rows and rows[0].owner != caller:
                    raise ForbiddenError(f"only {rows[0].owner!r} may rotate {service!r}'s key")
                if rows and rows[0].public_key == public_key:
                    return _keys(service, rows)
                if any(row.public_key == public_key for row in rows):
                    raise AlreadyExistsError(f"that key was {service!r}'s before: use a new one")
                session.add(
                    PublicKeyRow(
                        service=service,
                        public_key=public_key,
                        owner=caller,
                        valid_from=self._clock(),
                    )
                )
                await session.flush()
                return _keys(service, await _rows(session, service))
        except IntegrityError:
            raise AlreadyExistsError(f"{service!r}'s key changed meanwhile: retry") from None

    async def keys(self, service: str) -> ServiceKeys:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            rows = await _rows(session, check_service_name(service))
        if not rows:
            raise NotFoundError(f"no key is registered for {service!r}")
        return _keys(service, rows)

    async def verifying_keys(self) -> dict[str, list[Ed25519PublicKey]]:
        """Every service's keys, current and previous (what ``verify`` takes)."""
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            return await verifying_keys(session)

    async def signing_key(self, service: str, secret: str) -> Ed25519PrivateKey:
        """The central service ``service``'s private key, made (and its public key
        registered) at the first start; a key that no longer decrypts (the operator
        secret changed) is replaced, the old public key kept as a previous one."""
        async with self._sessions.begin() as session:
            row = await session.get(PrivateKeyRow, service, with_for_update=True)
            key = _load(row, secret) if row is not None else None
            if key is None:
                key = Ed25519PrivateKey.generate()
                pem, encrypted = _pem(key, secret)
                if row is None:
                    row = PrivateKeyRow(service=service, created_at=self._clock())
                    session.add(row)
                row.key_pem, row.encrypted, row.created_at = pem, encrypted, self._clock()
        await self.register(service, public_key_base64(key), caller=OPERATOR)
        return key


async def verifying_keys(session: AsyncSession) -> dict[str, list[Ed25519PublicKey]]:
    keys: dict[str, list[Ed25519PublicKey]] = {}
    for row in await session.scalars(select(PublicKeyRow).order_by(PublicKeyRow.id)):
        keys.setdefault(row.service, []).append(public_key_from_base64(row.public_key))
    return keys


async def _rows(session: AsyncSession, service: str, *, lock: bool = False) -> list[PublicKeyRow]:
    query = select(PublicKeyRow).where(PublicKeyRow.service == service)
    if lock:
        query = query.with_for_update()
    return list(await session.scalars(query.order_by(PublicKeyRow.id.desc())))


def _keys(service: str, rows: list[PublicKeyRow]) -> ServiceKeys:
    keys = [PublicKey(r.service, r.public_key, r.owner, r.valid_from) for r in rows]
    return ServiceKeys(service, keys[0], tuple(keys[1:]))


def _pem(key: Ed25519PrivateKey, secret: str) -> tuple[str, bool]:
    protection = BestAvailableEncryption(secret.encode()) if secret else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, protection)
    return pem.decode(), bool(secret)


def _load(row: PrivateKeyRow, secret: str) -> Ed25519PrivateKey | None:
    if row.encrypted and not secret:
        return None
    try:
        key = load_pem_private_key(row.key_pem.encode(), secret.encode() if row.encrypted else None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, Ed25519PrivateKey) else None
