"""Revocable sessions and per-client login back-off: users get a token version, logouts are
remembered until their session would have ended, failed logins are counted per (account,
client address) instead of locking the account for everyone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer, nullable=False, server_default="0"))
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until_ms")
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_revoked_sessions_expires_ms", "revoked_sessions", ["expires_ms"])
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("client", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_ms", sa.BigInteger, nullable=False),
        sa.Column("blocked_until_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_login_failures_last_failure_ms", "login_failures", ["last_failure_ms"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_failure_ms", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_revoked_sessions_expires_ms", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until_ms", sa.BigInteger, nullable=True))
        batch.drop_column("token_version")
