"""The auditor's desk: a customer's blacklisting and every fraud check (dfsp.audit_store).

``customers.blacklisted`` is set and cleared by an auditor (the same change is shared
with the central fraud service); a blacklisted customer may neither send nor receive.
``fraud_checks`` keeps every check an auditor recorded, and every blacklisting and
unblacklisting, with who and why: the last one is the customer's "last fraud check".
Like ``tier_changes`` it has no foreign key to ``customers``: it outlives them.
``ix_customers_national_id`` serves the auditor's look-up by national ID.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("blacklisted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index("ix_customers_national_id", "customers", ["national_id"])
    op.create_table(
        "fraud_checks",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("comment", sa.String(500), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("at", AT, nullable=False),
        sa.CheckConstraint(
            "action IN ('check', 'blacklist', 'unblacklist')",
            name=op.f("ck_fraud_checks_known_action"),
        ),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 0 AND score <= 100)",
            name=op.f("ck_fraud_checks_score_range"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_fraud_checks")),
    )
    op.create_index("ix_fraud_checks_customer", "fraud_checks", ["customer_id", "seq"])


def downgrade() -> None:
    op.drop_table("fraud_checks")
    op.drop_index("ix_customers_national_id", "customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("blacklisted")
