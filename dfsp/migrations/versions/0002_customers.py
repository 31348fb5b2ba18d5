"""Customers, their accounts, account holders and primary accounts.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("msisdn", sa.String(15), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("person_first_name", sa.String(100), nullable=False),
        sa.Column("person_last_name", sa.String(100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("national_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("pin_hash", sa.String(255), nullable=False),
        sa.Column("pin_failures", sa.Integer(), nullable=False),
        sa.Column("pin_locked", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.CheckConstraint(
            "role IN ('customer', 'merchant', 'agent')", name=op.f("ck_customers_known_role")
        ),
        sa.CheckConstraint(
            "pin_failures >= 0", name=op.f("ck_customers_pin_failures_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("user_number", name=op.f("uq_customers_user_number")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_customers_msisdn")),
        sa.UniqueConstraint(
            "person_first_name",
            "person_last_name",
            "date_of_birth",
            "national_id",
            name="uq_customers_person",
        ),
    )
    op.create_table(
        "customer_accounts",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("ledger_account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.CheckConstraint(
            "kind IN ('regular', 'commission')", name=op.f("ck_customer_accounts_known_kind")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_customer_accounts_ledger_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["customers.id"], name=op.f("fk_customer_accounts_owner_id_customers")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_customer_accounts")),
        sa.UniqueConstraint("id", name=op.f("uq_customer_accounts_id")),
        sa.UniqueConstraint(
            "ledger_account_id", name=op.f("uq_customer_accounts_ledger_account_id")
        ),
    )
    op.create_index(op.f("ix_customer_accounts_owner_id"), "customer_accounts", ["owner_id"])
    op.create_table(
        "account_holders",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("signatory", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["customer_accounts.id"],
            name=op.f("fk_account_holders_account_id_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_account_holders_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_account_holders")),
        sa.UniqueConstraint(
            "account_id", "customer_id", name=op.f("uq_account_holders_account_id")
        ),
    )
    op.create_index(op.f("ix_account_holders_customer_id"), "account_holders", ["customer_id"])
    op.create_table(
        "primary_accounts",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "customer_id"],
            ["account_holders.account_id", "account_holders.customer_id"],
            name=op.f("fk_primary_accounts_account_id_account_holders"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_primary_accounts_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_primary_accounts")),
    )
    op.create_index(op.f("ix_primary_accounts_account_id"), "primary_accounts", ["account_id"])


def downgrade() -> None:
    op.drop_table("primary_accounts")
    op.drop_table("account_holders")
    op.drop_table("customer_accounts")
    op.drop_table("customers")
