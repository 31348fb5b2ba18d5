"""Forensic log: every service's signed, hash-chained records, in append order.

Revision ID: forensic_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "forensic_0001"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("forensic",)
depends_on: str | None = None

AT = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forensic_records",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("at_utc", AT, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("stored_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forensic_records")),
        sa.UniqueConstraint("service", "seq", name=op.f("uq_forensic_records_service")),
    )
    op.create_index(op.f("ix_forensic_records_at_utc"), "forensic_records", ["at_utc"])
    op.create_index(op.f("ix_forensic_records_subject"), "forensic_records", ["subject"])


def downgrade() -> None:
    op.drop_index(op.f("ix_forensic_records_subject"), table_name="forensic_records")
    op.drop_index(op.f("ix_forensic_records_at_utc"), table_name="forensic_records")
    op.drop_table("forensic_records")
