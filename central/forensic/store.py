"""The forensic records of every service, in the order they were appended (``id``):
one row per record, exactly as signed (``at`` kept as written, ``data`` as canonical
JSON), with ``at_utc`` and ``subject`` indexed for the reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from central.kms.store import ROW_ID
from central.store import Base
from ussdloop import db


class ForensicRecordRow(Base):
    __tablename__ = "forensic_records"
    __table_args__ = (UniqueConstraint("service", "seq"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[str] = mapped_column(String(40))
    at_utc: Mapped[datetime] = mapped_column(db.UTCDateTime, index=True)
    event: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128), index=True)
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))
    stored_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
