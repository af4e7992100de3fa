"""Work-order lifecycle: SLA, assignment, escalation, fault episodes, audit history.

The one-open-order index gains `source`, so a root-cause order can be open beside the fault's.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = "status IN ('open', 'acknowledged', 'in_progress', 'on_hold')"


def upgrade() -> None:
    op.drop_index("uq_work_orders_open_fault", table_name="work_orders")
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="fault"))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="3"))
        for name in ("respond_by_ms", "resolve_by_ms", "responded_ms", "resolved_ms"):
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("closed_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("team", sa.String(64), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("recurrences", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_fault_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("parent_id", sa.Integer, nullable=True))
        batch.create_foreign_key(
            "fk_work_orders_parent_id_work_orders", "work_orders", ["parent_id"], ["id"]
        )
    op.execute("UPDATE work_orders SET last_fault_ms = fault_started_ms")
    op.create_index(
        "uq_work_orders_open_order",
        "work_orders",
        ["source", "device_id", "rule_id"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index("ix_work_orders_status_resolve_by", "work_orders", ["status", "resolve_by_ms"])
    op.create_table(
        "fault_episodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column(
            "work_order_id",
            sa.Integer,
            sa.ForeignKey("work_orders.id", name="fk_fault_episodes_work_order_id_work_orders"),
            nullable=True,
        ),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("device_id", "rule_id", "started_ms", name="uq_fault_episodes_episode"),
    )
    # Orders filed before this revision each stand for the episode they were opened for.
    op.execute(
        "INSERT INTO fault_episodes (device_id, rule_id, started_ms, work_order_id, recorded_ms)"
        " SELECT device_id, rule_id, fault_started_ms, MIN(id), MIN(created_ms) FROM work_orders"
        " WHERE device_id IS NOT NULL AND rule_id IS NOT NULL AND fault_started_ms IS NOT NULL"
        " GROUP BY device_id, rule_id, fault_started_ms"
    )
    op.create_table(
        "work_order_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "work_order_id",
            sa.Integer,
            sa.ForeignKey("work_orders.id", name="fk_work_order_events_work_order_id_work_orders"),
            nullable=False,
        ),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_work_order_events_order", "work_order_events", ["work_order_id", "id"])
    op.execute(
        "INSERT INTO work_order_events (work_order_id, at_ms, actor, event, to_status, note)"
        " SELECT id, created_ms, 'system', 'created', status,"
        " 'filed before the audit history existed' FROM work_orders"
    )


def downgrade() -> None:
    op.drop_index("ix_work_order_events_order", table_name="work_order_events")
    op.drop_table("work_order_events")
    op.drop_table("fault_episodes")
    op.drop_index("ix_work_orders_status_resolve_by", table_name="work_orders")
    op.drop_index("uq_work_orders_open_order", table_name="work_orders")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_constraint("fk_work_orders_parent_id_work_orders", type_="foreignkey")
        for name in (
            "parent_id", "last_fault_ms", "recurrences", "escalation_level", "assignee", "team",
            "closed_ms", "resolved_ms", "responded_ms", "resolve_by_ms", "respond_by_ms",
            "priority", "source",
        ):  # fmt: skip
            batch.drop_column(name)
    op.create_index(
        "uq_work_orders_open_fault",
        "work_orders",
        ["device_id", "rule_id"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
