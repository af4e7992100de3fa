"""SQL tables of the alerts stage (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

OPEN_STATUSES: Final = ("open", "acknowledged", "in_progress", "on_hold")
"""A work order in one of these states is the fault's current episode."""

metadata = MetaData()

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", String(64), nullable=False),
    Column("building_id", String(64), nullable=False),
    Column("unit_id", String(64), nullable=True),
    Column("device_id", String(64), nullable=True),
    Column("kind", String(32), nullable=True),
    Column("rule_id", String(128), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("category", String(16), nullable=False, server_default="equipment"),
    Column("title", String(300), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("fault_started_ms", BigInteger, nullable=True),
    Column("detected_ms", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("cleared_ms", BigInteger, nullable=True),
)

OPEN_EPISODE_WHERE = work_orders.c.status.in_(OPEN_STATUSES)

# One open work order per device and rule: the database, not a check-then-insert, keeps a
# fault delivered twice (or by two gateways at once) from opening two jobs.
Index(
    "uq_work_orders_open_fault",
    work_orders.c.device_id,
    work_orders.c.rule_id,
    unique=True,
    sqlite_where=OPEN_EPISODE_WHERE,
    postgresql_where=OPEN_EPISODE_WHERE,
)
Index("ix_work_orders_building_status", work_orders.c.building_id, work_orders.c.status)

device_state = Table(
    "device_state",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("building_id", String(64), nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("values_json", Text, nullable=False),
)
