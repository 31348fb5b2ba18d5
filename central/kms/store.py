"""The KMS tables: every service's public keys (current and previous, each with the
moment it became valid and who registered it), and the central service's own private
key (PKCS#8 PEM, encrypted with the operator secret when one is configured)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from central.store import Base
from ussdloop import db

ROW_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class PublicKeyRow(Base):
    __tablename__ = "kms_public_keys"
    __table_args__ = (UniqueConstraint("service", "public_key"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    owner: Mapped[str] = mapped_column(String(32))  # the DFSP's name, or "operator"
    valid_from: Mapped[datetime] = mapped_column(db.UTCDateTime)


class PrivateKeyRow(Base):
    """A private key the central service signs with (never logged, never served)."""

    __tablename__ = "kms_private_keys"

    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_pem: Mapped[str] = mapped_column(Text)
    encrypted: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(db.UTCDateTime)
