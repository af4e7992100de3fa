"""State shared by API replicas: rate-limit hits, and the live-updates feed with database-wide
event ids and the lease of the one process that writes it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_rate_limit_hits_scope_key_at_ms", "rate_limit_hits", ["scope", "key", "at_ms"]
    )
    op.create_index("ix_rate_limit_hits_at_ms", "rate_limit_hits", ["at_ms"])
    op.create_table(
        "live_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("building_id", sa.String(64), nullable=False),
        sa.Column("written_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "live_feed",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger, nullable=True),
        sa.Column("audit_cursor", sa.BigInteger, nullable=True),
        sa.Column("pruned_through", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("live_feed")
    op.drop_table("live_events")
    op.drop_index("ix_rate_limit_hits_at_ms", table_name="rate_limit_hits")
    op.drop_index("ix_rate_limit_hits_scope_key_at_ms", table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
