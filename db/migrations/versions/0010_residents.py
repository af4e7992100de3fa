"""Residents' report photos: the image bytes of a report, kept with its work order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_photos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "work_order_id",
            sa.Integer,
            sa.ForeignKey("work_orders.id", name="fk_report_photos_work_order_id_work_orders"),
            nullable=False,
        ),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_report_photos_order", "report_photos", ["work_order_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_report_photos_order", table_name="report_photos")
    op.drop_table("report_photos")
