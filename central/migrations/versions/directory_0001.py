"""Directory: end users, the DFSPs each one has (one primary), DFSP endpoints.

Revision ID: directory_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "directory_0001"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("directory",)
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("user_number", name=op.f("pk_users")),
    )
    op.create_table(
        "user_dfsps",
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("dfsp", sa.String(32), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("added_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("user_number", "dfsp", name=op.f("pk_user_dfsps")),
        sa.ForeignKeyConstraint(
            ["user_number"],
            ["users.user_number"],
            name=op.f("fk_user_dfsps_user_number_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dfsp"], ["participants.name"], name=op.f("fk_user_dfsps_dfsp_participants")
        ),
    )
    op.create_index(op.f("ix_user_dfsps_dfsp"), "user_dfsps", ["dfsp"])
    op.create_index(
        "ix_user_dfsps_one_primary",
        "user_dfsps",
        ["user_number"],
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    )
    op.create_table(
        "dfsp_endpoints",
        sa.Column("dfsp", sa.String(32), nullable=False),
        sa.Column("url", sa.String(200), nullable=False),
        sa.Column("changed_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("dfsp", name=op.f("pk_dfsp_endpoints")),
        sa.ForeignKeyConstraint(
            ["dfsp"], ["participants.name"], name=op.f("fk_dfsp_endpoints_dfsp_participants")
        ),
    )


def downgrade() -> None:
    op.drop_table("dfsp_endpoints")
    op.drop_index("ix_user_dfsps_one_primary", table_name="user_dfsps")
    op.drop_index(op.f("ix_user_dfsps_dfsp"), table_name="user_dfsps")
    op.drop_table("user_dfsps")
    op.drop_table("users")
