"""Notification cursors in the database, each held by one relay at a time (a lease).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_cursors",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("floor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("done", sa.Text, nullable=False, server_default="[]"),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("notification_cursors")
