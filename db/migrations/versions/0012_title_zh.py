"""Work orders carry their title in 中文 beside the English one (the rule pack's `title_zh`),
so the dashboard and the owners' report show either language.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Orders filed before this revision keep only their English title (title_zh NULL).
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("title_zh", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("title_zh")
