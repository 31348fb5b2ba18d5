"""Bulk payments: the bulk roles of customers, batches and their rows (dfsp.bulk_store).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bulk_roles",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "role", name=op.f("pk_bulk_roles")),
    )
    op.create_table(
        "bulk_batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("maker_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("checker_id", sa.String(36), nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("end_at", AT, nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("decided_at", AT, nullable=True),
        sa.Column("finished_at", AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_batches")),
    )
    op.create_index("ix_bulk_batches_state", "bulk_batches", ["state"])
    op.create_table(
        "bulk_rows",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("identifier", sa.String(100), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("national_id", sa.String(100), nullable=False),
        sa.Column("dob", sa.String(100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("msisdn", sa.String(16), nullable=True),
        sa.Column("user_number", sa.String(16), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", AT, nullable=True),
        sa.Column("transfer_id", sa.String(36), nullable=True),
        sa.Column("fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", AT, nullable=True),
        sa.Column("invited_at", AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["bulk_batches.id"],
            name=op.f("fk_bulk_rows_batch_id_bulk_batches"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "line", name=op.f("pk_bulk_rows")),
    )
    op.create_index("ix_bulk_rows_due", "bulk_rows", ["batch_id", "state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_bulk_rows_due", table_name="bulk_rows")
    op.drop_table("bulk_rows")
    op.drop_index("ix_bulk_batches_state", table_name="bulk_batches")
    op.drop_table("bulk_batches")
    op.drop_table("bulk_roles")
