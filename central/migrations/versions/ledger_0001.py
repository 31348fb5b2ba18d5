"""Central ledger: position accounts (and central-fees), two-phase transfers, their
entries, notifications per DFSP and settlements.

Revision ID: ledger_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0001"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("ledger",)
depends_on: str | None = None

AT = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    accounts = op.create_table(
        "ledger_accounts",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("notified_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("payer", sa.String(32), nullable=False),
        sa.Column("payee", sa.String(32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("condition", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("fulfilment", sa.LargeBinary(32), nullable=True),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("debit_memo", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("prepared_at", AT, nullable=False),
        sa.Column("executed_at", AT, nullable=True),
        sa.Column("decided_at", AT, nullable=True),
        sa.Column("settlement_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
    )
    op.create_index(
        "ix_ledger_transfers_state_expires_at", "ledger_transfers", ["state", "expires_at"]
    )
    op.create_index("ix_ledger_transfers_payer_state", "ledger_transfers", ["payer", "state"])
    op.create_index("ix_ledger_transfers_payee_state", "ledger_transfers", ["payee", "state"])
    op.create_index("ix_ledger_transfers_settlement_id", "ledger_transfers", ["settlement_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(36), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_entries_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["account"],
            ["ledger_accounts.name"],
            name=op.f("fk_ledger_entries_account_ledger_accounts"),
        ),
    )
    op.create_index(op.f("ix_ledger_entries_transfer_id"), "ledger_entries", ["transfer_id"])
    op.create_index(op.f("ix_ledger_entries_account"), "ledger_entries", ["account"])
    op.create_table(
        "ledger_notifications",
        sa.Column("dfsp", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("dfsp", "seq", name=op.f("pk_ledger_notifications")),
    )
    op.create_table(
        "ledger_settlements",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("transfer_count", sa.Integer(), nullable=False),
        sa.Column("settled_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_settlements")),
    )
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":  # stored naive UTC, as ussdloop.db does
        now = now.replace(tzinfo=None)
    op.bulk_insert(accounts, [{"name": "central-fees", "notified_seq": 0, "created_at": now}])


def downgrade() -> None:
    op.drop_table("ledger_settlements")
    op.drop_table("ledger_notifications")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
