"""The product's SQL tables: work orders, device state, users, notification cursors,
maintenance plans' orders and evidence.

One `metadata` for the one database they share (SQLite by default, PostgreSQL at scale). This
is the schema's current shape; `db/migrations` gets a database there. A change here needs a
new migration revision (a test compares the two on SQLite and PostgreSQL). What the rows mean
is up to the stores that write them (`alerts.store`, `api.auth.users`, `alerts.notify`).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

OPEN_STATUSES: Final = ("open", "acknowledged", "in_progress", "on_hold")
"""A work order in one of these states is the fault's current episode: the predicate of the
one-open-order index, frozen in revision 0002 (the lifecycle in `alerts.workorders` must agree,
a test checks)."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

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
    # -- lifecycle, SLA, assignment (revision 0002) --
    Column("source", String(16), nullable=False, server_default="fault"),
    Column("priority", Integer, nullable=False, server_default="3"),
    Column("respond_by_ms", BigInteger, nullable=True),
    Column("resolve_by_ms", BigInteger, nullable=True),
    Column("responded_ms", BigInteger, nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Column("closed_ms", BigInteger, nullable=True),
    Column("team", String(64), nullable=True),
    Column("assignee", String(128), nullable=True),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("recurrences", Integer, nullable=False, server_default="0"),
    Column("last_fault_ms", BigInteger, nullable=True),
    Column("parent_id", Integer, ForeignKey("work_orders.id"), nullable=True),
    # -- the maintenance board (revision 0009) --
    Column("hold_reason", Text, nullable=True),
    Column("hold_until_ms", BigInteger, nullable=True),
    Column("resolution_code", String(32), nullable=True),
    # -- titles in 中文 (revision 0012) --
    Column("title_zh", String(300), nullable=True),
)

OPEN_EPISODE_WHERE = work_orders.c.status.in_(OPEN_STATUSES)
OPEN_INDEX_PREDICATE = text("status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")")
"""The one-open-order index's predicate for `ON CONFLICT ... WHERE`, its values written out.
As bound parameters (what `OPEN_EPISODE_WHERE` renders), PostgreSQL cannot match the partial
index once it plans the statement generically: psycopg prepares a statement run five times on
a connection, PostgreSQL goes generic after five more, and the 11th filing on a connection
failed with "no unique or exclusion constraint matching the ON CONFLICT specification"."""

# One open work order per source, device and rule: the database, not a check-then-insert,
# keeps a fault delivered twice (or by two gateways at once) from opening two jobs.
OPEN_ORDER_KEY = (work_orders.c.source, work_orders.c.device_id, work_orders.c.rule_id)
Index(
    "uq_work_orders_open_order",
    *OPEN_ORDER_KEY,
    unique=True,
    sqlite_where=OPEN_EPISODE_WHERE,
    postgresql_where=OPEN_EPISODE_WHERE,
)
Index("ix_work_orders_building_status", work_orders.c.building_id, work_orders.c.status)
Index("ix_work_orders_status_resolve_by", work_orders.c.status, work_orders.c.resolve_by_ms)

fault_episodes = Table(
    "fault_episodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("work_order_id", Integer, ForeignKey("work_orders.id"), nullable=True),
    Column("recorded_ms", BigInteger, nullable=False),
    # It began within its rule's gap of the last clear: the same event back, no recurrence.
    Column("flap", Boolean, nullable=False, server_default=false()),
    # Each fault episode is handled once, however often (and by however many gateways) it is
    # delivered: the insert of this row is the gate, so a replay after resolution files nothing.
    UniqueConstraint("device_id", "rule_id", "started_ms", name="uq_fault_episodes_episode"),
)
"""Every fault episode seen, and the work order it went to (also counts recurrences)."""

work_order_events = Table(
    "work_order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, ForeignKey("work_orders.id"), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("event", String(16), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=True),
    Column("note", Text, nullable=True),
    # A resolution's code, a hold's expected end (revision 0009).
    Column("code", String(32), nullable=True),
    Column("due_ms", BigInteger, nullable=True),
    Index("ix_work_order_events_order", "work_order_id", "id"),
)
"""The audit history: every change of a work order, who made it and when; comments too."""

report_photos = Table(
    "report_photos",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, ForeignKey("work_orders.id"), nullable=False),
    Column("media_type", String(32), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_report_photos_order", "work_order_id", "id"),
)
"""Photos residents attach to their reports (revision 0010): in the database every API
replica shares, named by id, never by the sender's file name; the type is the one the bytes
showed (JPEG, PNG, WebP), not the one the client claimed."""

teams = Table(
    "teams",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)
"""The teams work orders and technicians may belong to: a managed list (revision 0009)."""

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

# -- users of the API (revision 0003) --

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("display_name", String(128), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("team", String(64), nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    # Every token carries the version it was issued under; bumping it (password, role,
    # buildings, disabled, "log out everywhere") ends all the user's sessions (revision 0006).
    Column("token_version", Integer, nullable=False, server_default="0"),
    UniqueConstraint("username", name="uq_users_username"),
)
"""People who log in to the API: a role; technicians a team, stewards their buildings."""

user_buildings = Table(
    "user_buildings",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("building_id", String(64), primary_key=True),
)
"""The buildings a steward looks after (the only ones they see)."""

user_sites = Table(
    "user_sites",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", String(64), primary_key=True),
)
"""The whole sites of a portfolio a user is limited to (revision 0013): a steward sees every
building of them (beside `user_buildings`); a dispatcher or technician with any sees only
those sites (a regional desk); none: no limit by site."""

# -- sessions and login back-off (revision 0006) --

revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("session_id", String(32), primary_key=True),
    Column("user_id", Integer, nullable=False),
    # When the session would have ended anyway (its absolute lifetime): the row can go then.
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_revoked_sessions_expires_ms", "expires_ms"),
)
"""Sessions ended by a logout: their tokens are refused until they would have expired."""

login_failures = Table(
    "login_failures",
    metadata,
    # Any name tried, existing or not: unknown names back off exactly like real ones.
    Column("username", String(64), primary_key=True),
    Column("client", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_ms", BigInteger, nullable=False),
    Column("blocked_until_ms", BigInteger, nullable=True),
    Index("ix_login_failures_last_failure_ms", "last_failure_ms"),
)
"""Failed logins per (account, client address): the back-off that slows a guesser down."""

# -- notification cursors (revision 0004) --

notification_cursors = Table(
    "notification_cursors",
    metadata,
    Column("channel", String(64), primary_key=True),
    # Every audit event id at or below `floor` is handled; `done` lists the handled ones above.
    Column("floor", BigInteger, nullable=False, server_default="0"),
    Column("done", Text, nullable=False, server_default="[]"),
    # The relay sending this channel's notices, until its lease runs out unrenewed.
    Column("owner", String(128), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
)
"""How far each notification channel got, shared by every gateway on the database."""

# -- shard rule state (revision 0007) --

rule_checkpoints = Table(
    "rule_checkpoints",
    metadata,
    Column("shard", String(128), primary_key=True),
    # When the leader saved it (its wall clock): a takeover replays stored readings from about
    # then (alerts.takeover).
    Column("saved_ms", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
)
"""The rules engine's state per gateway shard (an npz of its arrays), loaded on takeover."""

# -- state shared by API replicas (revision 0008) --

rate_limit_hits = Table(
    "rate_limit_hits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Which limit (`login`, `report`, `code`) and what it counts (a client address, a unit).
    Column("scope", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_rate_limit_hits_scope_key_at_ms", "scope", "key", "at_ms"),
    Index("ix_rate_limit_hits_at_ms", "at_ms"),
)
"""The hits each sliding-window rate limit allowed, shared by every API process."""

live_events = Table(
    "live_events",
    metadata,
    # Never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL): it is the SSE id a
    # client sends back as Last-Event-ID, to any replica.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("type", String(32), nullable=False),
    Column("building_id", String(64), nullable=False),
    Column("written_ms", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    sqlite_autoincrement=True,
)
"""The live-updates feed: every event once, in order, for a bounded window (pruned)."""

live_feed = Table(
    "live_feed",
    metadata,
    Column("name", String(32), primary_key=True),
    # The API process writing the feed, until its lease runs out unrenewed.
    Column("owner", String(128), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    # The last work-order audit event copied into the feed (None: start from the newest).
    Column("audit_cursor", BigInteger, nullable=True),
    # Every feed event at or below this id may have been pruned (a replay from there: reset).
    Column("pruned_through", BigInteger, nullable=False, server_default="0"),
)
"""Who writes the live-updates feed, and how far it got."""

# -- preventive maintenance (revision 0010) --

maintenance_tracking = Table(
    "maintenance_tracking",
    metadata,
    Column("plan_id", String(128), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    # When the scheduler first saw this plan apply to this device: a device never maintained
    # under the plan has its first visit due within one interval of it.
    Column("since_ms", BigInteger, nullable=False),
)
"""Since when each (plan, device) is tracked: the first row written wins, on any process."""

maintenance_orders = Table(
    "maintenance_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(128), nullable=False),
    Column("device_id", String(64), nullable=False),
    # The newest finished scheduled order of the plan and device when this one was planned
    # (0: none): one order per period, however many schedulers plan it at once.
    Column("after_order_id", Integer, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("work_order_id", Integer, ForeignKey("work_orders.id"), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("plan_id", "device_id", "after_order_id", name="uq_maintenance_orders_period"),
)
"""Every scheduled order a plan made: the insert of this row is the gate (like an episode's)."""

maintenance_evidence = Table(
    "maintenance_evidence",
    metadata,
    Column("plan_id", String(128), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    # done_ms // the plan's interval: one row per device per interval, the newest pass in it.
    Column("period", BigInteger, primary_key=True),
    Column("done_ms", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("recorded_ms", BigInteger, nullable=False),
)
"""Telemetry that showed a plan's test passing (the newest reading per interval)."""
