"""The maintenance board: teams as a managed list, a hold's reason and expected date, a
resolution code, and both recorded on the audit event that set them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_TEAMS = ("access-control", "electrical", "lift-contractor", "maintenance", "plumbing")
"""The teams the default assignment rules name (`alerts.workorders`), so a fresh install can
route and reassign without setup; an admin adds and removes others."""


def upgrade() -> None:
    teams = op.create_table(
        "teams",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(teams, [{"name": name, "created_ms": 0} for name in DEFAULT_TEAMS])
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("hold_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("hold_until_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("resolution_code", sa.String(32), nullable=True))
    with op.batch_alter_table("work_order_events") as batch:
        batch.add_column(sa.Column("code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("due_ms", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_order_events") as batch:
        batch.drop_column("due_ms")
        batch.drop_column("code")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("resolution_code")
        batch.drop_column("hold_until_ms")
        batch.drop_column("hold_reason")
    op.drop_table("teams")
