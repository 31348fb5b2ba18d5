"""Participants: the DFSPs of the network, their hashed credentials, status and cap.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("net_debit_cap_minor", sa.BigInteger(), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("changed_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_participants")),
        sa.UniqueConstraint("key", name=op.f("uq_participants_key")),
    )


def downgrade() -> None:
    op.drop_table("participants")
