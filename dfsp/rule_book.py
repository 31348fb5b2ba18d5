"""The DFSP's fees, limits and tiers as an auditor changes them (SPEC section 3, "Limits
and tiers", "Fees": "every change is written to the forensic log").

The tables have the shape of the network configuration (``[dfsps.X.fees]``,
``[[dfsps.X.tiers]]``, see ``dfsp.domain.fees`` / ``.tiers``); the desk edits them as
TOML text, so an operator writes what they would write in the file. A change is checked
whole (every mistake names its key, e.g. ``tiers[1].limits.max_transfer``), refused if
it drops a tier some customer is in, stored in ``rule_changes`` with who and why, and
committed only once the forensic log took its record (``rules.changed``: the table, its
SHA-256, by, reason). Then ``on_change`` hands the new tables to the payments, clearing
and customers (``use_fees`` / ``use_tiers``).

At start ``load`` puts the latest stored table of each kind in force over the
configuration's. Several processes of one DFSP (one PostgreSQL): each calls ``load``
now and then (``dfsp.service`` does, with its hold sweep), so a change reaches them all
within seconds.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import tomli_w
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from dfsp.customer_store import CustomerRow
from dfsp.domain.fees import FeeTable
from dfsp.domain.tiers import TierTable
from dfsp.forensic import DfspForensic, table_hash
from dfsp.store import Base, UTCDateTime
from ussdloop.config import ConfigError

_SERIAL = BigInteger().with_variant(Integer, "sqlite")
FEES: Final = "fees"
TIERS: Final = "tiers"
MAX_DOCUMENT_CHARS: Final = 20_000
MAX_REASON: Final = 200
HISTORY: Final = 20

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
OnChange = Callable[[FeeTable, TierTable], None]


class RuleChangeRefused(ValueError):
    """A table the desk cannot take (its TOML, a rule, a tier in use); nothing changed."""


class RuleChangeRow(Base):
    __tablename__ = "rule_changes"
    __table_args__ = (
        CheckConstraint("kind IN ('fees', 'tiers')", name="known_kind"),
        Index("ix_rule_changes_kind", "kind", "seq"),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    document: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(MAX_REASON))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class RuleChange:
    seq: int
    kind: str
    actor: str
    reason: str
    at: datetime


class RuleBook:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        currency: str,
        fees: dict[str, Any],  # the configuration's tables, until a change is stored
        tiers: list[Any],
        clock: Clock,
        on_change: OnChange = lambda fees, tiers: None,
    ) -> None:
        self._sessions = sessions
        self._currency = currency
        self._documents: dict[str, Any] = {FEES: fees, TIERS: tiers}
        self._seen = 0  # the latest rule_changes row in force
        self._clock = clock
        self.forensic: DfspForensic | None = None  # set once built (it logs these tables)
        self.on_change = on_change
        self.fees, self.tiers = self._fee_table(fees), self._tier_table(tiers)

    @property
    def fees_document(self) -> dict[str, Any]:
        return dict(self._documents[FEES])

    @property
    def tiers_document(self) -> list[Any]:
        return list(self._documents[TIERS])

    def fees_toml(self) -> str:
        return tomli_w.dumps(self._documents[FEES])

    def tiers_toml(self) -> str:
        return tomli_w.dumps({TIERS: self._documents[TIERS]})

    async def load(self) -> None:
        """Put the latest stored tables in force: at start, and now and then to take a
        change another process of this DFSP stored."""
        async with self._sessions() as session:
            rows = await _latest(session, self._seen)
        changed = False
        for row in rows:
            document = json.loads(row.document)
            self.fees = self._fee_table(document) if row.kind == FEES else self.fees
            self.tiers = self._tier_table(document) if row.kind == TIERS else self.tiers
            self._documents[row.kind] = document
            self._seen, changed = max(self._seen, row.seq), True
        if changed:
            self.on_change(self.fees, self.tiers)

    async def change_fees(self, actor: str, text: str, reason: str) -> FeeTable:
        document = _parsed(text)
        try:
            table = FeeTable.from_toml(document, self._currency, FEES)
        except (ConfigError, ValueError) as error:
            raise RuleChangeRefused(str(error)) from None
        await self._store(FEES, document, actor, reason)
        self.fees = table
        self.on_change(self.fees, self.tiers)
        return table

    async def change_tiers(self, actor: str, text: str, reason: str) -> TierTable:
        parsed = _parsed(text)
        if set(parsed) != {TIERS}:
            raise RuleChangeRefused("write the tiers as [[tiers]] tables, lowest first")
        document = parsed[TIERS]
        try:
            table = TierTable.from_toml(document, self._currency, TIERS)
        except (ConfigError, ValueError) as error:
            raise RuleChangeRefused(str(error)) from None
        async with self._sessions() as session:
            in_use = set(await session.scalars(select(CustomerRow.tier).distinct()))
        missing = sorted(name for name in in_use if name is not None and name not in _names(table))
        if missing:
            raise RuleChangeRefused(f"customers are in tiers this table drops: {missing}")
        await self._store(TIERS, document, actor, reason)
        self.tiers = table
        self.on_change(self.fees, self.tiers)
        return table

    async def history(self) -> list[RuleChange]:
        """The latest changes, newest first."""
        query = select(RuleChangeRow).order_by(RuleChangeRow.seq.desc()).limit(HISTORY)
        async with self._sessions() as session:
            rows = await session.scalars(query)
            return [RuleChange(r.seq, r.kind, r.actor, r.reason, r.at) for r in rows]

    async def _store(self, kind: str, document: Any, actor: str, reason: str) -> None:
        reason = " ".join(reason.split())
        if not 0 < len(reason) <= MAX_REASON:
            raise RuleChangeRefused(f"a reason is 1 to {MAX_REASON} characters")
        async with self._sessions.begin() as session:
            row = RuleChangeRow(
                kind=kind,
                document=json.dumps(document, sort_keys=True),
                actor=actor,
                reason=reason,
                at=self._clock(),
            )
            session.add(row)
            await session.flush()
            if self.forensic is not None:
                data = {
                    "by": actor,
                    "reason": reason,
                    "sha256": table_hash(document),
                    kind: document,
                }
                await self.forensic.record_before_commit("rules.changed", kind, data)
        self._documents[kind], self._seen = document, max(self._seen, row.seq)
        log.info("event=rules_changed kind=%s seq=%s actor=%s", kind, row.seq, actor)

    def _fee_table(self, document: Any) -> FeeTable:
        return FeeTable.from_toml(document, self._currency, FEES)

    def _tier_table(self, document: Any) -> TierTable:
        return TierTable.from_toml(list(document), self._currency, TIERS)


async def _latest(session: AsyncSession, after: int) -> list[RuleChangeRow]:
    """The newest row of each kind stored after ``after``, oldest first."""
    rows: list[RuleChangeRow] = []
    for kind in (FEES, TIERS):
        query = (
            select(RuleChangeRow)
            .where(RuleChangeRow.kind == kind, RuleChangeRow.seq > after)
            .order_by(RuleChangeRow.seq.desc())
            .limit(1)
        )
        rows.extend(await session.scalars(query))
    return sorted(rows, key=lambda row: row.seq)


def _parsed(text: str) -> dict[str, Any]:
    if len(text) > MAX_DOCUMENT_CHARS:
        raise RuleChangeRefused(f"the table is over {MAX_DOCUMENT_CHARS} characters")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleChangeRefused(f"not valid TOML: {error}") from None


def _names(table: TierTable) -> set[str]:
    return {tier.name for tier in table.tiers}
