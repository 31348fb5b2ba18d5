"""The DFSP's forensic signing key (Ed25519, made at the first start with a central link).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "forensic_keys",
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("private_key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_forensic_keys")),
    )


def downgrade() -> None:
    op.drop_table("forensic_keys")
