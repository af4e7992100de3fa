"""What every part of the store shares (engine, clock, policy, write lock) and audit helpers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, select

from alerts.orderstore.models import (
    DeviceColumns,
    WorkOrder,
    WorkOrderEvent,
    event_from_row,
    work_order_from_row,
)
from alerts.workorders import EventKind, WorkOrderNotFoundError, WorkOrderPolicy
from db.engine import begin_write, upsert_for
from db.migrate import migrate
from db.schema import work_order_events, work_orders
from facility.clock import Clock, now_ms
from facility.site import Site


class StoreCore:
    """What the parts of `alerts.store.WorkOrderStore` share: one SQL engine, clock and policy."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock_ms: Clock = now_ms,
        policy: WorkOrderPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.clock_ms = clock_ms
        self.policy = policy if policy is not None else WorkOrderPolicy()
        self._columns: dict[str, tuple[Site, DeviceColumns]] = {}
        is_pg = engine.dialect.name == "postgresql"
        self._upsert = upsert_for(engine)
        # SQLite has one writer anyway; waiting here is cheaper than in its busy handler.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if is_pg else threading.Lock()
        )

    def create_schema(self) -> None:
        """Kept for callers from before migrations: runs them."""
        self.migrate()

    def migrate(self, revision: str = "head") -> None:
        migrate(self.engine, revision)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, begin_write(self.engine) as conn:
            yield conn


def fetch_order(conn: Connection, order_id: int, *, lock: bool = False) -> WorkOrder:
    """The order, locked for update if `lock`; `WorkOrderNotFoundError` if there is none."""
    query = select(work_orders).where(work_orders.c.id == order_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise WorkOrderNotFoundError(order_id)
    return work_order_from_row(row)


def add_event(
    conn: Connection,
    order_id: int,
    at_ms: int,
    actor: str,
    kind: EventKind,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    code: str | None = None,
    due_ms: int | None = None,
) -> int:
    """Append a line to the order's audit history; returns its id."""
    return int(
        conn.execute(
            work_order_events.insert()
            .values(
                work_order_id=order_id,
                at_ms=at_ms,
                actor=actor,
                event=str(kind),
                from_status=None if from_status is None else str(from_status),
                to_status=None if to_status is None else str(to_status),
                note=note,
                code=code,
                due_ms=due_ms,
            )
            .returning(work_order_events.c.id)
        ).scalar_one()
    )


def order_events(
    conn: Connection, order_id: int, *, event_id: int | None = None
) -> list[WorkOrderEvent]:
    """The order's audit history (or its one event `event_id`), oldest first."""
    query = (
        select(work_order_events)
        .where(work_order_events.c.work_order_id == order_id)
        .order_by(work_order_events.c.id)
    )
    if event_id is not None:
        query = query.where(work_order_events.c.id == event_id)
    return [event_from_row(row) for row in conn.execute(query)]


def require_actor(actor: str) -> None:
    """Refuse a change without a named actor."""
    if not actor.strip():
        raise ValueError("every change of a work order needs an actor (who made it)")
