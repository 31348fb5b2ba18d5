"""Pending transactions: invoices and agent cash-out requests.

Revision ID: 0004
Revises: 0003
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payee_customer_id", sa.String(36), nullable=False),
        sa.Column("payee_account_id", sa.String(36), nullable=False),
        sa.Column("buyer_customer_id", sa.String(36), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approval", sa.String(64), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("decided_at", AT, nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_invoices_positive")),
        sa.CheckConstraint(
            "state IN ('pending', 'paid', 'rejected')", name=op.f("ck_invoices_known_state")
        ),
        sa.CheckConstraint("kind IN ('invoice', 'cash_out')", name=op.f("ck_invoices_known_kind")),
        sa.CheckConstraint(
            "state <> 'paid' OR approval IS NOT NULL", name=op.f("ck_invoices_paid_by_transfer")
        ),
        sa.ForeignKeyConstraint(
            ["payee_customer_id"],
            ["customers.id"],
            name=op.f("fk_invoices_payee_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["payee_account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_invoices_payee_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_customer_id"],
            ["customers.id"],
            name=op.f("fk_invoices_buyer_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    op.create_index("ix_invoices_buyer_state", "invoices", ["buyer_customer_id", "state"])
    op.create_index("ix_invoices_payee_state", "invoices", ["payee_customer_id", "state"])


def downgrade() -> None:
    op.drop_table("invoices")
