"""The ledger: accounts, two-phase transfers, their postings, and entries.

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("incoming_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_limit_minor", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.CheckConstraint("held_minor >= 0", name=op.f("ck_ledger_accounts_held_not_negative")),
        sa.CheckConstraint(
            "incoming_minor >= 0", name=op.f("ck_ledger_accounts_incoming_not_negative")
        ),
        sa.CheckConstraint(
            "allow_negative OR balance_minor >= held_minor", name=op.f("ck_ledger_accounts_covered")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=True),
        sa.Column("decided_at", AT, nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("memo", sa.JSON(), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_ledger_transfers_positive")),
        sa.CheckConstraint(
            "state IN ('prepared', 'executed', 'rejected', 'expired')",
            name=op.f("ck_ledger_transfers_known_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
    )
    op.create_index("ix_ledger_transfers_due", "ledger_transfers", ["state", "expires_at"])
    op.create_table(
        "ledger_postings",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("debit_account", sa.String(64), nullable=False),
        sa.Column("credit_account", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_ledger_postings_positive")),
        sa.CheckConstraint(
            "debit_account <> credit_account", name=op.f("ck_ledger_postings_two_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_postings_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_postings_debit_account_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_postings_credit_account_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
        sa.UniqueConstraint("transfer_id", "position", name=op.f("uq_ledger_postings_transfer_id")),
    )
    op.create_index(op.f("ix_ledger_postings_debit_account"), "ledger_postings", ["debit_account"])
    op.create_index(
        op.f("ix_ledger_postings_credit_account"), "ledger_postings", ["credit_account"]
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_entries_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(op.f("ix_ledger_entries_transfer_id"), "ledger_entries", ["transfer_id"])
    op.create_index("ix_ledger_entries_statement", "ledger_entries", ["account_id", "id"])


def downgrade() -> None:
    op.drop_table("ledger_entries")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
