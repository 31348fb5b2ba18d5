"""The directory's tables: end users, the DFSPs each one has (exactly one primary, held
by a unique index over the primary rows), and each DFSP's interledger endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from central.store import Base
from ussdloop import db


class UserRow(Base):
    __tablename__ = "users"

    user_number: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # display name, "First Last"
    created_at: Mapped[datetime] = mapped_column(db.UTCDateTime)


class UserDfspRow(Base):
    __tablename__ = "user_dfsps"
    __table_args__ = (
        # At most one primary DFSP per user, whatever runs concurrently.
        Index(
            "ix_user_dfsps_one_primary",
            "user_number",
            unique=True,
            sqlite_where=text("is_primary"),
            postgresql_where=text("is_primary"),
        ),
    )

    user_number: Mapped[str] = mapped_column(
        String(8), ForeignKey("users.user_number", ondelete="CASCADE"), primary_key=True
    )
    dfsp: Mapped[str] = mapped_column(
        String(32), ForeignKey("participants.name"), primary_key=True, index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime] = mapped_column(db.UTCDateTime)


class DfspEndpointRow(Base):
    """Where a DFSP's interledger receivers answer (set by the DFSP itself)."""

    __tablename__ = "dfsp_endpoints"

    dfsp: Mapped[str] = mapped_column(String(32), ForeignKey("participants.name"), primary_key=True)
    url: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
