"""The notice outbox: what the DFSP tells its customers by SMS / USSD push.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notice_outbox",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("message", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("push", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", AT, nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("finished_at", AT, nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dropped')",
            name=op.f("ck_notice_outbox_known_state"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notice_outbox_attempts_not_negative")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notice_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_notice_outbox_key")),
    )
    op.create_index("ix_notice_outbox_due", "notice_outbox", ["state", "next_attempt_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_notice_outbox_due", table_name="notice_outbox")
    op.drop_table("notice_outbox")
