"""Rule state per gateway shard: the active gateway checkpoints its rules engine here, and a
standby that takes the shard over loads it (hot-standby gateways).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_checkpoints",
        sa.Column("shard", sa.String(128), primary_key=True),
        sa.Column("saved_ms", sa.BigInteger, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_checkpoints")
