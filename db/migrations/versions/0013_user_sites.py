"""Users scoped to whole sites of a portfolio: a steward of an estate, a regional desk
(dispatchers and technicians limited to some sites).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sites",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", name="fk_user_sites_user_id_users", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("site_id", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("user_sites")
