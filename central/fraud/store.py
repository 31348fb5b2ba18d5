"""The fraud component's tables: the latest report of each DFSP about each user, and the
blacklist (one row per user number ever blacklisted, with who changed it last and when).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from central.store import Base
from ussdloop import db


class FraudReportRow(Base):
    """A DFSP's latest report about a user: a new report replaces its previous one."""

    __tablename__ = "fraud_reports"
    __table_args__ = (CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),)

    dfsp: Mapped[str] = mapped_column(String(32), ForeignKey("participants.name"), primary_key=True)
    user_number: Mapped[str] = mapped_column(String(8), primary_key=True, index=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(200))
    reported_at: Mapped[datetime] = mapped_column(db.UTCDateTime)


class BlacklistRow(Base):
    """Whether a user number is blacklisted, and the last change: its reason, who, when."""

    __tablename__ = "fraud_blacklist"

    user_number: Mapped[str] = mapped_column(String(8), primary_key=True)
    blacklisted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(200))
    changed_by: Mapped[str] = mapped_column(String(64))  # a DFSP's name or the operator's key
    changed_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
