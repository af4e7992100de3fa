"""The change monitor: turns what changed in the database into live-updates events, once for
every API process sharing the database.

Once per interval, in every process, it
- follows the feed (`api.feed`): the events written since its last look go to this process's
  subscribers (the hub), and update its copy of the statuses the feed last announced;
- if this process holds the feed's lease (one process at a time does), it writes the new
  events: `work_order` events for the audit events written since the saved cursor (by a
  gateway, by any API replica), and `device_status` / `building_status` events for the
  devices and buildings whose status (which also changes by silence, with no write at all)
  differs from what the feed last announced — then follows the feed again, so its own
  subscribers see them in the same round.

Comparing with what the feed announced, not with what this process last saw, makes a takeover
seamless: the new writer announces each change once, with the right `previous`.
`poll_once()` does one round, so tests drive it without a thread.
"""

from __future__ import annotations

import logging

import numpy as np

from alerts.status import NO_READING, STATUSES, Codes, StatusBoard
from alerts.store import WorkOrderStore
from api.events import Event, EventHub
from api.feed import LiveFeed, NewEvent
from facility.clock import Clock
from facility.periodic import PeriodicWorker
from facility.site import Site

log = logging.getLogger(__name__)
BATCH = 500
"""Audit events (and feed events) read per query."""


class ChangeMonitor:
    def __init__(
        self,
        site: Site,
        store: WorkOrderStore,
        hub: EventHub,
        *,
        clock_ms: Clock,
        interval_s: float = 1.0,
        feed: LiveFeed | None = None,
    ) -> None:
        self.site = site
        self.store = store
        self.hub = hub
        self.feed = feed or LiveFeed(store.engine)
        self.clock_ms = clock_ms
        self.interval_s = interval_s
        self._cursor: int | None = None
        """The last feed event handed to the hub (None: not started)."""
        # Devices in building order; building j's are rows bounds[j]:bounds[j + 1].
        self._board = StatusBoard(site.buildings)
        self._devices = self._board.devices
        self._bounds = self._board.bounds
        self._names = [str(s) for s in STATUSES]
        self._code_of = {name: code for code, name in enumerate(self._names)}
        self._device_row = {d.id: i for i, d in enumerate(self._devices)}
        self._building_row = {b.id: j for j, b in enumerate(site.buildings)}
        # What the feed last announced per device / building (this process's copy).
        self._announced: Codes | None = None
        self._announced_buildings: Codes | None = None
        self._last_seen = np.zeros(0, dtype=np.int64)
        self._worker: PeriodicWorker | None = None

    @property
    def errors(self) -> int:
        """Rounds that failed (the feed goes on; the next round tries again)."""
        return 0 if self._worker is None else self._worker.failures

    def start(self) -> None:
        if self._worker is not None:
            return
        self._worker = PeriodicWorker(
            "change-monitor", self.interval_s, self.poll_once, run_at_start=True
        )
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
            try:
                self.feed.release()  # another replica takes over at once
            except Exception:  # the database is away: the lease runs out by itself
                log.warning("could not hand back the live-updates feed", exc_info=True)

    def poll_once(self) -> int:
        """One round; returns how many events it handed to this process's subscribers."""
        now = self.clock_ms()
        if self._cursor is None:  # start from now: history is in the lists, not the stream
            self._cursor = self.feed.newest_id()
            codes, building_codes, _ = self._evaluate(now)
            self._announced, self._announced_buildings = codes.copy(), building_codes.copy()
            self.feed.write(now, self._start_audit_cursor)
            return 0
        published = self._follow()
        lease = self.feed.lease(now)
        if not lease.may_write:
            return published
        statuses = self._status_events(now)
        if not (statuses or lease.renew_due or self._new_audit_events(lease.audit_cursor)):
            return published  # nothing to write, and the lease still runs: no write lock
        written = self.feed.write(now, lambda cursor: self._work_order_events(cursor, statuses))
        if written:
            published += self._follow()
        return published

    def _follow(self) -> int:
        """Hand the feed's new events to the hub; keep the announced statuses."""
        assert self._cursor is not None
        published = 0
        while True:
            events = self.feed.after(self._cursor, BATCH)
            if events and events[0].id > self._cursor + 1 and self.feed.lost_after(self._cursor):
                self._lost()
            for event in events:
                self._note(event)
                self.hub.publish(event)
                self._cursor = event.id
            published += len(events)
            if len(events) < BATCH:
                return published

    def _lost(self) -> None:
        """This process fell behind past the feed's window: its streams missed events. End
        them (each client reconnects, is told to reload), and take the statuses afresh."""
        log.warning("live updates: this process fell behind the feed; ending its streams")
        self.hub.close()
        codes, building_codes, _ = self._evaluate(self.clock_ms())
        self._announced, self._announced_buildings = codes.copy(), building_codes.copy()

    def _note(self, event: Event) -> None:
        if self._announced is None or self._announced_buildings is None:
            return
        code = self._code_of.get(str(event.data.get("status")))
        if code is None:
            return
        if event.type == "device_status":
            row = self._device_row.get(str(event.data.get("device_id")))
            if row is not None:
                self._announced[row] = code
        elif event.type == "building_status":
            row = self._building_row.get(event.building_id)
            if row is not None:
                self._announced_buildings[row] = code

    def _new_audit_events(self, cursor: int | None) -> bool:
        return cursor is None or self.store.last_event_id() > cursor

    def _start_audit_cursor(self, cursor: int | None) -> tuple[list[NewEvent], int | None]:
        """The first writer ever starts at the newest audit event; later ones where it was."""
        return [], self.store.last_event_id() if cursor is None else cursor

    def _work_order_events(
        self, cursor: int | None, statuses: list[NewEvent]
    ) -> tuple[list[NewEvent], int | None]:
        """The audit events after `cursor` as `work_order` events, then `statuses`."""
        if cursor is None:
            return statuses, self.store.last_event_id()
        events: list[NewEvent] = []
        while True:
            rows = self.store.events_after(cursor, limit=BATCH)
            for event, order in rows:
                events.append(
                    NewEvent(
                        "work_order",
                        order.building_id,
                        {
                            "event": event.event,
                            "event_id": event.id,
                            "work_order_id": order.id,
                            "building_id": order.building_id,
                            "unit_id": order.unit_id,
                            "device_id": order.device_id,
                            "severity": order.severity,
                            "status": order.status,
                            "from_status": event.from_status,
                            "to_status": event.to_status,
                            "actor": event.actor,
                            "at_ms": event.at_ms,
                            "note": event.note if event.event != "created" else None,
                            "title": order.title,
                            "title_zh": order.title_zh,
                            "assignee": order.assignee,
                            "team": order.team,
                        },
                    )
                )
                cursor = event.id
            if len(rows) < BATCH:
                return events + statuses, cursor

    def _status_events(self, now: int) -> list[NewEvent]:
        """Every device's status as one array (`alerts.status.status_codes`: a round stays a
        few ms at 10k devices), and events for those that differ from what the feed said."""
        codes, building_codes, orders = self._evaluate(now)
        previous, previous_buildings = self._announced, self._announced_buildings
        if previous is None or previous_buildings is None:
            return []
        events: list[NewEvent] = []
        names = self._names
        last_seen = self._last_seen
        for i in np.flatnonzero(codes != previous):
            device = self._devices[i]
            events.append(
                NewEvent(
                    "device_status",
                    device.building_id,
                    {
                        "device_id": device.id,
                        "building_id": device.building_id,
                        "unit_id": device.unit_id,
                        "kind": device.kind,
                        "status": names[codes[i]],
                        "previous": names[previous[i]],
                        "last_seen_ms": None if last_seen[i] == NO_READING else int(last_seen[i]),
                        "at_ms": now,
                    },
                )
            )
        for j in np.flatnonzero(building_codes != previous_buildings):
            building = self.site.buildings[j]
            counts: dict[str, dict[str, int]] = {}
            for row in range(int(self._bounds[j]), int(self._bounds[j + 1])):
                per_kind = counts.setdefault(self._devices[row].kind, {})
                name = names[codes[row]]
                per_kind[name] = per_kind.get(name, 0) + 1
            events.append(
                NewEvent(
                    "building_status",
                    building.id,
                    {
                        "building_id": building.id,
                        "status": names[building_codes[j]],
                        "previous": names[previous_buildings[j]],
                        "counts": counts,
                        "open_work_orders": orders.get(building.id, 0),
                        "at_ms": now,
                    },
                )
            )
        return events

    def evaluate(self, now_ms: int) -> tuple[dict[str, str], dict[str, str]]:
        """Every device's and building's status at `now_ms`, by id (what a round compares)."""
        codes, building_codes, _ = self._evaluate(now_ms)
        names = self._names
        return (
            {d.id: names[c] for d, c in zip(self._devices, codes, strict=True)},
            {b.id: names[c] for b, c in zip(self.site.buildings, building_codes, strict=True)},
        )

    def _evaluate(self, now: int) -> tuple[Codes, Codes, dict[str, int]]:
        """(device status codes, building status codes, open orders per building)."""
        marks = self.store.open_order_marks()
        result = self._board.evaluate(now, self.store.devices_last_seen(), marks)
        self._last_seen = result.last_seen_ms
        per_building: dict[str, int] = {}
        for _, building_id, _ in marks:
            per_building[building_id] = per_building.get(building_id, 0) + 1
        return result.codes, result.building_codes, per_building
