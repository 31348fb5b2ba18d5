"""KMS: services' public keys (with their validity start and owner), central's private key.

Revision ID: kms_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "kms_0001"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("kms",)
depends_on: str | None = None

AT = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kms_public_keys",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("valid_from", AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kms_public_keys")),
        sa.UniqueConstraint("service", "public_key", name=op.f("uq_kms_public_keys_service")),
    )
    op.create_index(
        op.f("ix_kms_public_keys_service"), "kms_public_keys", ["service"], unique=False
    )
    op.create_table(
        "kms_private_keys",
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("key_pem", sa.Text(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_kms_private_keys")),
    )


def downgrade() -> None:
    op.drop_table("kms_private_keys")
    op.drop_index(op.f("ix_kms_public_keys_service"), table_name="kms_public_keys")
    op.drop_table("kms_public_keys")
