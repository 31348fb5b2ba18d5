"""The central services' tables: ``Base`` for every component's models, and the
participants (DFSPs) every component refers to.

The schema is made by the Alembic migrations in ``central/migrations`` (each component
on its own branch from ``0001``, see ``central.migrate``), never by ``create_all``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ussdloop import db


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=db.NAMING_CONVENTION)


class ParticipantRow(Base):
    """A DFSP of the network: its credentials (the secret only as a hash), whether it is
    paused, and its net debit cap at the central ledger (None: no cap)."""

    __tablename__ = "participants"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # "active" or "paused"
    net_debit_cap_minor: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
