"""The schema as `metadata.create_all` made it before migrations existed.

Databases made that way are stamped at this revision by `db.migrate.migrate` and upgraded
from here, so an existing var/facility.sqlite3 keeps its work orders.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_OPEN = "status IN ('open', 'acknowledged', 'in_progress', 'on_hold')"


def upgrade() -> None:
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("building_id", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("rule_id", sa.String(128), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False, server_default="equipment"),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("fault_started_ms", sa.BigInteger, nullable=True),
        sa.Column("detected_ms", sa.BigInteger, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("cleared_ms", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "uq_work_orders_open_fault",
        "work_orders",
        ["device_id", "rule_id"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index("ix_work_orders_building_status", "work_orders", ["building_id", "status"])
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("building_id", sa.String(64), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("values_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_state")
    op.drop_index("ix_work_orders_building_status", table_name="work_orders")
    op.drop_index("uq_work_orders_open_fault", table_name="work_orders")
    op.drop_table("work_orders")
