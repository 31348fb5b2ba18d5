"""Fraud: the DFSPs' latest report per user, and the blacklist.

Revision ID: fraud_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "fraud_0001"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("fraud",)
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fraud_reports",
        sa.Column("dfsp", sa.String(32), nullable=False),
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("reported_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("dfsp", "user_number", name=op.f("pk_fraud_reports")),
        sa.ForeignKeyConstraint(
            ["dfsp"], ["participants.name"], name=op.f("fk_fraud_reports_dfsp_participants")
        ),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name=op.f("ck_fraud_reports_score_range")),
    )
    op.create_index(op.f("ix_fraud_reports_user_number"), "fraud_reports", ["user_number"])
    op.create_table(
        "fraud_blacklist",
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("blacklisted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("user_number", name=op.f("pk_fraud_blacklist")),
    )


def downgrade() -> None:
    op.drop_table("fraud_blacklist")
    op.drop_index(op.f("ix_fraud_reports_user_number"), table_name="fraud_reports")
    op.drop_table("fraud_reports")
