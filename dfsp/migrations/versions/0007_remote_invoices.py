"""Invoices across DFSPs: a buyer at another DFSP on the merchant's side, and the
invoices merchants of other DFSPs sent to customers here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.alter_column("buyer_customer_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("buyer_user_number", sa.String(32), nullable=True))
        batch.add_column(sa.Column("buyer_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("buyer_dfsp", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("buyer_told", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.create_check_constraint(
            op.f("ck_invoices_buyer_here_or_elsewhere"),
            "buyer_customer_id IS NOT NULL OR buyer_dfsp IS NOT NULL",
        )
    op.create_table(
        "remote_invoices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("merchant_dfsp", sa.String(32), nullable=False),
        sa.Column("merchant_invoice_id", sa.String(64), nullable=False),
        sa.Column("merchant_user_number", sa.String(32), nullable=False),
        sa.Column("merchant_name", sa.String(100), nullable=False),
        sa.Column("buyer_customer_id", sa.String(36), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(160), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approval", sa.String(64), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("decided_at", AT, nullable=True),
        sa.Column("merchant_told", sa.Boolean(), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_remote_invoices_positive")),
        sa.CheckConstraint(
            "state IN ('pending', 'paid', 'rejected')",
            name=op.f("ck_remote_invoices_known_state"),
        ),
        sa.CheckConstraint(
            "state <> 'paid' OR approval IS NOT NULL",
            name=op.f("ck_remote_invoices_paid_by_transfer"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_customer_id"],
            ["customers.id"],
            name=op.f("fk_remote_invoices_buyer_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_invoices")),
        sa.UniqueConstraint(
            "merchant_dfsp",
            "merchant_invoice_id",
            name=op.f("uq_remote_invoices_merchant_dfsp"),
        ),
    )
    op.create_index(
        "ix_remote_invoices_buyer_state", "remote_invoices", ["buyer_customer_id", "state"]
    )


def downgrade() -> None:
    op.drop_table("remote_invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("ck_invoices_buyer_here_or_elsewhere", type_="check")
        batch.drop_column("buyer_told")
        batch.drop_column("buyer_dfsp")
        batch.drop_column("buyer_name")
        batch.drop_column("buyer_user_number")
        batch.alter_column("buyer_customer_id", existing_type=sa.String(36), nullable=False)
