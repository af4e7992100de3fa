"""Reading the audit history as an outbox, and remembering how far a channel got.

Event ids come from an autoincrement column, but on PostgreSQL a transaction can commit a lower
id after a higher one was read, and a rolled-back insert leaves a hole forever. So the cursor is
a floor (every id at or below it is handled) plus the handled ids above it; a hole holds the
floor back for a grace period, after which it is taken to be a rollback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Engine, select

from alerts.notify.errors import CursorError
from alerts.schema import work_order_events, work_orders
from alerts.store import WorkOrder
from alerts.workorders import EventKind

NOTIFY_EVENTS = frozenset({EventKind.CREATED, EventKind.REOPENED, EventKind.ESCALATED})
"""Events someone must hear about; the rest (comments, transitions) are the board's business."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: int
    event: str
    at_ms: int
    note: str | None
    order: WorkOrder | None
    """Only for the events in NOTIFY_EVENTS; others are read just to see the id sequence."""


def read_after(engine: Engine, floor: int, *, limit: int = 500) -> list[OutboxRow]:
    """Events with an id above `floor`, oldest first, with their orders where they notify."""
    events = work_order_events.c
    query = (
        select(events.id, events.event, events.at_ms, events.note, events.work_order_id)
        .where(events.id > floor)
        .order_by(events.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        wanted = sorted({r.work_order_id for r in rows if r.event in NOTIFY_EVENTS})
        orders: dict[int, WorkOrder] = {}
        if wanted:
            for row in conn.execute(select(work_orders).where(work_orders.c.id.in_(wanted))):
                order = WorkOrder(**row._mapping)
                orders[order.id] = order
    return [OutboxRow(r.id, r.event, r.at_ms, r.note, orders.get(r.work_order_id)) for r in rows]


@dataclass(slots=True)
class Cursor:
    floor: int = 0
    done: set[int] = field(default_factory=set)
    holes_since_ms: dict[int, int] = field(default_factory=dict)
    """When each missing id was first noticed (not persisted: a restart restarts the grace)."""

    def mark(self, event_id: int) -> None:
        if event_id > self.floor:
            self.done.add(event_id)

    def handled(self, event_id: int) -> bool:
        return event_id <= self.floor or event_id in self.done

    def advance(self, now_ms: int, grace_ms: int) -> None:
        """Raise the floor over handled ids, and over holes older than the grace period."""
        top = max(self.done, default=self.floor)
        while self.floor < top:
            nxt = self.floor + 1
            if nxt in self.done:
                self.done.discard(nxt)
            else:
                first_seen = self.holes_since_ms.setdefault(nxt, now_ms)
                if now_ms - first_seen < grace_ms:
                    break
                self.holes_since_ms.pop(nxt)
            self.floor = nxt

    def save(self, path: Path) -> None:
        """Atomically, so a crash leaves the old cursor or the new one, never half of one."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        data = orjson.dumps({"floor": self.floor, "done": sorted(self.done)})
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> Cursor:
        """A missing file is a fresh start; an unreadable one is an error, not a silent reset
        (which would notify every old event again)."""
        if not path.exists():
            return Cursor()
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CursorError(f"{path}: cannot read the notification cursor: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("floor"), int):
            raise CursorError(f"{path}: not a notification cursor")
        done = raw.get("done", [])
        if not isinstance(done, list) or not all(isinstance(i, int) for i in done):
            raise CursorError(f"{path}: not a notification cursor")
        return Cursor(raw["floor"], set(done))
