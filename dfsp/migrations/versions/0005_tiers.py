"""Each customer's tier, whether an auditor's downgrade holds, and the tier history.

``customers.tier`` names the customer's tier in the configured table; NULL means the
table's first tier (every customer found here, and every new one, until a change), so the
migration needs no tier name from the configuration. ``customers.tier_held`` is set by an
auditor's downgrade (``dfsp.domain.tiers.TierChange.holds``). ``tier_changes`` records
every change, automatic or an auditor's: what the forensic log reads. It has no foreign
key to ``customers``: the history outlives a customer who closes their last account.

Revision ID: 0005
Revises: 0004
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("tier", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("tier_held", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "tier_changes",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("from_tier", sa.String(32), nullable=False),
        sa.Column("to_tier", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.CheckConstraint(
            "reason IN ('automatic', 'auditor')", name=op.f("ck_tier_changes_known_reason")
        ),
        sa.CheckConstraint(
            "(reason = 'automatic' AND actor IS NULL)"
            " OR (reason = 'auditor' AND actor IS NOT NULL)",
            name=op.f("ck_tier_changes_auditor_named"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_tier_changes")),
    )
    op.create_index(op.f("ix_tier_changes_customer_id"), "tier_changes", ["customer_id"])


def downgrade() -> None:
    op.drop_table("tier_changes")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("tier_held")
        batch.drop_column("tier")
