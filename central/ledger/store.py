"""The central ledger's tables (made by ``central/migrations/versions/ledger_0001.py``).

- ``ledger_accounts``: one settlement position account per participant (made on first
  use) and ``central-fees``; a row is the lock a payer's prepares queue on, and it counts
  the notifications addressed to its DFSP (``notified_seq``), so each DFSP's
  notification numbers are gap-free and in commit order;
- ``ledger_transfers``: the two-phase transfers, their state, reason and fulfilment,
  and the settlement that closed them;
- ``ledger_entries``: each transfer's balanced entries (debits negative);
- ``ledger_notifications``: every state change, addressed to each DFSP of the transfer;
- ``ledger_settlements``: the closed windows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from central.store import Base
from ussdloop import db

NAME_LENGTH = 32


class LedgerAccountRow(Base):
    __tablename__ = "ledger_accounts"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    notified_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(db.UTCDateTime)


class LedgerTransferRow(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        Index("ix_ledger_transfers_state_expires_at", "state", "expires_at"),
        Index("ix_ledger_transfers_payer_state", "payer", "state"),
        Index("ix_ledger_transfers_payee_state", "payee", "state"),
        Index("ix_ledger_transfers_settlement_id", "settlement_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    payer: Mapped[str] = mapped_column(String(NAME_LENGTH))
    payee: Mapped[str] = mapped_column(String(NAME_LENGTH))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    condition: Mapped[bytes] = mapped_column(LargeBinary(32))
    expires_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    fulfilment: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    memo: Mapped[str] = mapped_column(Text)  # JSON object
    debit_memo: Mapped[str | None] = mapped_column(Text)  # JSON object
    request_digest: Mapped[str] = mapped_column(String(64))  # a retry must match it
    prepared_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
    executed_at: Mapped[datetime | None] = mapped_column(db.UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(db.UTCDateTime)  # rejected/expired
    settlement_id: Mapped[str | None] = mapped_column(String(36))


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.name"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # debit < 0 < credit


class LedgerNotificationRow(Base):
    __tablename__ = "ledger_notifications"

    dfsp: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)  # the notification JSON without its id
    created_at: Mapped[datetime] = mapped_column(db.UTCDateTime)


class LedgerSettlementRow(Base):
    __tablename__ = "ledger_settlements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    transfer_count: Mapped[int] = mapped_column(Integer)
    settled_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
