"""Back-office sessions in the database (dfsp.web.sessions), so that they survive a
restart and every process of the DFSP serves them.

``web_sessions`` holds logged-in sessions by the SHA-256 of their cookie's token;
``web_secret`` is the DFSP's key for the login form's CSRF tokens, made here once so
that processes starting together agree on it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("user_number", sa.String(8), nullable=False),
        sa.Column("name", sa.String(201), nullable=False),
        sa.Column("roles", sa.String(64), nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
    secret = op.create_table(
        "web_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.LargeBinary(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_secret")),
    )
    op.bulk_insert(secret, [{"id": 1, "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    op.drop_table("web_secret")
    op.drop_table("web_sessions")
