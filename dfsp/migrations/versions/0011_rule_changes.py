"""Fees, limits and tiers changed by an auditor (dfsp.rule_book).

``rule_changes`` keeps every change, oldest first: which table (``fees`` or ``tiers``),
the whole new table as JSON in the shape of the network configuration
(``[dfsps.X.fees]``, ``[[dfsps.X.tiers]]``), who and why. The latest row of each kind
is in force; with none, the configuration's table is.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rule_changes",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.CheckConstraint("kind IN ('fees', 'tiers')", name=op.f("ck_rule_changes_known_kind")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_rule_changes")),
    )
    op.create_index("ix_rule_changes_kind", "rule_changes", ["kind", "seq"])


def downgrade() -> None:
    op.drop_table("rule_changes")
