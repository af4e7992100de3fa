"""The live-updates feed in the shared database: one ordered log of events for every API
process, so a client's `Last-Event-ID` means the same on any replica.

One process at a time writes the feed: the one holding its lease (a row of `live_feed`,
taken when free or run out, renewed by every write, like the notification relays' cursors).
A write is one transaction that first re-takes the lease, so a process that lost it (stalled
past the lease, another took over) writes nothing; and since writers are serialised on that
row, ids are committed in order and a reader following `id > cursor` never skips one. The
work-order audit cursor is saved in the same row and transaction: after a takeover the new
writer copies from where the last one stopped, each audit event once.

Every process reads the feed (`after`) and hands the events to its own subscribers; a
reconnecting client is replayed from it (`replay`). The feed keeps the newest `keep` events
no older than `keep_ms`; `pruned_through` says up to where events may be gone, so a replay from
before it answers None (the client reloads) instead of leaving a hole.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from api.events import Event
from db.engine import begin_write, upsert_for
from db.schema import live_events, live_feed

FEED: Final = "live"
"""The `live_feed` row of the one feed."""
PRUNE_EVERY_MS: Final = 60_000
"""Age-based pruning runs at least this often while nothing is written."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write: the feed gives it its id."""

    type: str
    building_id: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Lease:
    """The feed's lease as this process sees it (read outside a transaction: a hint; `write`
    decides)."""

    may_write: bool
    """This process holds the lease, or it is free or ran out."""
    renew_due: bool
    """Not this process's yet, or less than half of it left."""
    audit_cursor: int | None


Collect = Callable[[int | None], tuple[Sequence[NewEvent], int | None]]
"""Given the saved audit cursor (None: never set, or nobody wrote the feed for longer than it
keeps events), the events to write and the new cursor to save."""


def process_owner() -> str:
    """A name for this process's lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class LiveFeed:
    def __init__(
        self,
        engine: Engine,
        *,
        owner: str | None = None,
        lease_ms: int = 5_000,
        keep: int = 1_000,
        keep_ms: int = 3_600_000,
    ) -> None:
        self.engine = engine
        self.owner = owner or process_owner()
        self.lease_ms = lease_ms
        self.keep = keep
        self.keep_ms = keep_ms
        self._next_prune_ms = 0

    # -- writing (the lease holder) ---------------------------------------------------------

    def lease(self, now_ms: int) -> Lease:
        """Whether this process holds the lease or could take it, and whether it is due for
        renewal (a read: no write lock)."""
        f = live_feed.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(f.owner, f.lease_until_ms, f.audit_cursor).where(f.name == FEED)
            ).first()
        if row is None:
            return Lease(may_write=True, renew_due=True, audit_cursor=None)
        mine = row.owner == self.owner and row.lease_until_ms is not None
        free = row.owner is None or row.lease_until_ms is None or row.lease_until_ms < now_ms
        return Lease(
            may_write=mine or free,
            renew_due=not mine or row.lease_until_ms - now_ms < self.lease_ms // 2,
            audit_cursor=None if row.audit_cursor is None else int(row.audit_cursor),
        )

    def write(self, now_ms: int, collect: Collect) -> int | None:
        """Take or renew the lease and write what `collect` gives, in one transaction; how
        many events were written, or None when another process holds the lease."""
        f = live_feed.c
        with begin_write(self.engine) as conn:
            conn.execute(
                upsert_for(self.engine)(live_feed)
                .values(name=FEED, pruned_through=0)
                .on_conflict_do_nothing(index_elements=[f.name])
            )
            last_until = conn.execute(
                select(f.lease_until_ms).where(f.name == FEED)
            ).scalar_one_or_none()
            row = conn.execute(
                update(live_feed)
                .where(
                    f.name == FEED,
                    or_(f.owner == self.owner, f.owner.is_(None), f.lease_until_ms < now_ms),
                )
                .values(owner=self.owner, lease_until_ms=now_ms + self.lease_ms)
                .returning(f.audit_cursor, f.pruned_through)
            ).first()
            if row is None:
                return None
            # Nobody wrote the feed for longer than it keeps events (every API process was
            # down): start from now, as the first writer does, not with the whole backlog.
            stale = last_until is not None and last_until < now_ms - self.keep_ms
            saved = None if row.audit_cursor is None or stale else int(row.audit_cursor)
            events, cursor = collect(saved)
            if events:
                conn.execute(
                    insert(live_events),
                    [
                        {
                            "type": e.type,
                            "building_id": e.building_id,
                            "written_ms": now_ms,
                            "data": orjson.dumps(e.data).decode(),
                        }
                        for e in events
                    ],
                )
            if cursor != row.audit_cursor:
                conn.execute(update(live_feed).where(f.name == FEED).values(audit_cursor=cursor))
            if events or now_ms >= self._next_prune_ms:
                self._next_prune_ms = now_ms + PRUNE_EVERY_MS
                self._prune(conn, now_ms, int(row.pruned_through))
        return len(events)

    def _prune(self, conn: Connection, now_ms: int, pruned_through: int) -> None:
        e = live_events.c
        too_old = conn.execute(
            select(func.max(e.id)).where(e.written_ms <= now_ms - self.keep_ms)
        ).scalar_one_or_none()
        beyond_keep = conn.execute(
            select(e.id).order_by(e.id.desc()).offset(self.keep).limit(1)
        ).scalar_one_or_none()
        cut = max(int(too_old or 0), int(beyond_keep or 0))
        if cut <= pruned_through:
            return
        conn.execute(delete(live_events).where(e.id <= cut))
        conn.execute(update(live_feed).where(live_feed.c.name == FEED).values(pruned_through=cut))

    def release(self) -> None:
        """Hand the lease back at once (a clean stop), instead of after it runs out."""
        f = live_feed.c
        with begin_write(self.engine) as conn:
            conn.execute(
                update(live_feed)
                .where(f.name == FEED, f.owner == self.owner)
                .values(owner=None)  # the time stays: when the feed was last written
            )

    # -- reading (every process) ------------------------------------------------------------

    def newest_id(self) -> int:
        """The id of the newest event written (pruned or not): where following starts."""
        with self.engine.connect() as conn:
            return _newest(conn)

    def after(self, cursor: int, limit: int = 500) -> list[Event]:
        """Events after `cursor`, oldest first, at most `limit`."""
        e = live_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(live_events).where(e.id > cursor).order_by(e.id).limit(limit)
            ).all()
        return [_event(row) for row in rows]

    def lost_after(self, cursor: int) -> bool:
        """Whether events after `cursor` were pruned before they were read (a reader that
        fell more than the window behind)."""
        with self.engine.connect() as conn:
            pruned = conn.execute(
                select(live_feed.c.pruned_through).where(live_feed.c.name == FEED)
            ).scalar_one_or_none()
        return int(pruned or 0) > cursor

    def replay(self, after_id: int) -> list[Event] | None:
        """Every event after `after_id` (a client's Last-Event-ID), or None when that is not
        possible: some were pruned, or the id was never given out by this feed (an id from
        before this feed existed, or from another database)."""
        e = live_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(live_events).where(e.id > after_id).order_by(e.id).limit(self.keep + 1)
            ).all()
            # Read after the rows: a prune that committed in between makes this None (safe),
            # never a replay with a hole in it.
            pruned = conn.execute(
                select(live_feed.c.pruned_through).where(live_feed.c.name == FEED)
            ).scalar_one_or_none()
            newest = _newest(conn)
        if after_id > newest or after_id < int(pruned or 0) or len(rows) > self.keep:
            return None
        return [_event(row) for row in rows]


def _newest(conn: Connection) -> int:
    newest = conn.execute(select(func.max(live_events.c.id))).scalar_one_or_none()
    pruned = conn.execute(
        select(live_feed.c.pruned_through).where(live_feed.c.name == FEED)
    ).scalar_one_or_none()
    return max(int(newest or 0), int(pruned or 0))


def _event(row: Any) -> Event:
    return Event(int(row.id), row.type, row.building_id, orjson.loads(row.data))
