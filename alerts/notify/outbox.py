"""Reading the audit history as an outbox, and remembering how far a channel got.

Event ids come from an autoincrement column, but on PostgreSQL a transaction can commit a lower
id after a higher one was read, and a rolled-back insert leaves a hole forever. So the cursor is
a floor (every id at or below it is handled) plus the handled ids above it; a hole holds the
floor back for a grace period, after which it is taken to be a rollback.

The cursor lives in the work-order database (`notification_cursors`), so every gateway on that
database shares it, and one relay at a time holds a channel: it takes a lease, renews it while
it works and hands it back when it stops. Another gateway's relay takes over when the lease runs
out unrenewed (its gateway died) and goes on from the saved cursor, so each notice is sent once,
or twice at most when a relay died while sending it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from sqlalchemy import Engine, or_, select, update

from alerts.notify.errors import CursorError
from alerts.store import WorkOrder, work_order_from_row
from alerts.workorders import EventKind
from db.engine import begin_write, upsert_for
from db.schema import notification_cursors, work_order_events, work_orders

NOTIFY_EVENTS = frozenset({EventKind.CREATED, EventKind.REOPENED, EventKind.ESCALATED})
"""Events someone must hear about; the rest (comments, transitions) are the board's business."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: int
    event: EventKind
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
                order = work_order_from_row(row)
                orders[order.id] = order
    return [
        OutboxRow(r.id, EventKind(r.event), r.at_ms, r.note, orders.get(r.work_order_id))
        for r in rows
    ]


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

    def dumps(self) -> str:
        return orjson.dumps(sorted(self.done)).decode()

    @staticmethod
    def loads(floor: int, done: str) -> Cursor:
        """An unreadable `done` is an error, not a silent reset (which would notify every old
        event again)."""
        try:
            ids = orjson.loads(done)
        except orjson.JSONDecodeError as exc:
            raise CursorError(f"notification cursor: cannot read {done[:40]!r}: {exc}") from exc
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise CursorError(f"notification cursor: not a list of event ids: {done[:40]!r}")
        return Cursor(int(floor), set(ids))


class SharedCursor:
    """One channel's cursor in the database, held by one relay at a time under a lease."""

    def __init__(self, engine: Engine, channel: str, owner: str, lease_ms: int) -> None:
        self.engine = engine
        self.channel = channel
        self.owner = owner
        self.lease_ms = lease_ms
        self._upsert = upsert_for(engine)
        c = notification_cursors.c
        self._mine = (c.channel == channel) & (c.owner == owner)

    def acquire(self, now_ms: int) -> Cursor | None:
        """The saved cursor if this relay now holds the channel; None while another does."""
        c = notification_cursors.c
        with begin_write(self.engine) as conn:
            conn.execute(
                self._upsert(notification_cursors)
                .values(channel=self.channel)
                .on_conflict_do_nothing(index_elements=[c.channel])
            )
            row = conn.execute(
                update(notification_cursors)
                .where(
                    c.channel == self.channel,
                    or_(c.owner == self.owner, c.owner.is_(None), c.lease_until_ms < now_ms),
                )
                .values(owner=self.owner, lease_until_ms=now_ms + self.lease_ms)
                .returning(c.floor, c.done)
            ).first()
        return None if row is None else Cursor.loads(row.floor, row.done)

    def renew(self, now_ms: int, cursor: Cursor | None = None) -> bool:
        """Extend the lease (and save `cursor`); False if another relay holds the channel now."""
        values: dict[str, object] = {"lease_until_ms": now_ms + self.lease_ms}
        if cursor is not None:
            values |= {"floor": cursor.floor, "done": cursor.dumps()}
        with begin_write(self.engine) as conn:
            result = conn.execute(update(notification_cursors).where(self._mine).values(**values))
        return result.rowcount == 1

    def release(self) -> None:
        """Hand the channel back at once (a clean stop), instead of after the lease."""
        with begin_write(self.engine) as conn:
            conn.execute(
                update(notification_cursors)
                .where(self._mine)
                .values(owner=None, lease_until_ms=None)
            )
