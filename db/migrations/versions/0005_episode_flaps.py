"""Fault episodes that are a flap of the one before (within the rule's gap): not recurrences.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fault_episodes") as batch:
        batch.add_column(sa.Column("flap", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("fault_episodes") as batch:
        batch.drop_column("flap")
