"""Preventive maintenance: since when each plan tracks a device, the orders plans made (one per
period, gated by a unique key), and the telemetry that showed a plan's test passing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_tracking",
        sa.Column("plan_id", sa.String(128), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("since_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "maintenance_orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("after_order_id", sa.Integer, nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column(
            "work_order_id",
            sa.Integer,
            sa.ForeignKey("work_orders.id", name="fk_maintenance_orders_work_order_id_work_orders"),
            nullable=True,
        ),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "plan_id", "device_id", "after_order_id", name="uq_maintenance_orders_period"
        ),
    )
    op.create_table(
        "maintenance_evidence",
        sa.Column("plan_id", sa.String(128), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("period", sa.BigInteger, primary_key=True),
        sa.Column("done_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("maintenance_evidence")
    op.drop_table("maintenance_orders")
    op.drop_table("maintenance_tracking")
