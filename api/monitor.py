"""The change monitor: turns what changed in the database into hub events.

Once per interval it
- reads the work-order audit events written since the last look (by this process or any
  other sharing the database: a gateway, another API replica) and publishes `work_order`
  events, and
- re-evaluates every device's and building's status (which also changes by silence, with no
  write at all) and publishes `device_status` / `building_status` events for those that
  changed.

`poll_once()` does one round, so tests drive it without a thread.
"""

from __future__ import annotations

import logging

import numpy as np

from alerts.status import NO_READING, STATUSES, Codes, StatusBoard
from alerts.store import WorkOrderStore
from api.events import EventHub
from facility.clock import Clock
from facility.periodic import PeriodicWorker
from facility.site import Site

log = logging.getLogger(__name__)


class ChangeMonitor:
    def __init__(
        self,
        site: Site,
        store: WorkOrderStore,
        hub: EventHub,
        *,
        clock_ms: Clock,
        interval_s: float = 1.0,
    ) -> None:
        self.site = site
        self.store = store
        self.hub = hub
        self.clock_ms = clock_ms
        self.interval_s = interval_s
        self._cursor: int | None = None
        # Devices in building order; building j's are rows bounds[j]:bounds[j + 1].
        self._board = StatusBoard(site.buildings)
        self._devices = self._board.devices
        self._bounds = self._board.bounds
        self._names = [str(s) for s in STATUSES]
        self._codes: Codes | None = None
        self._building_codes: Codes | None = None
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

    def poll_once(self) -> int:
        """One round; returns how many events it published."""
        published = self._work_order_events()
        return published + self._statuses()

    def _work_order_events(self) -> int:
        if self._cursor is None:  # start from now: history is in the lists, not the stream
            self._cursor = self.store.last_event_id()
            return 0
        published = 0
        while True:
            rows = self.store.events_after(self._cursor, limit=500)
            for event, order in rows:
                self.hub.publish(
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
                        "assignee": order.assignee,
                        "team": order.team,
                    },
                )
                self._cursor = event.id
                published += 1
            if len(rows) < 500:
                return published

    def _statuses(self) -> int:
        """Every device's status as one array (`alerts.status.status_codes`: a round stays a
        few ms at 10k devices), and events for what changed."""
        now = self.clock_ms()
        codes, building_codes, orders = self._evaluate(now)
        previous, self._codes = self._codes, codes
        previous_buildings, self._building_codes = self._building_codes, building_codes
        if previous is None or previous_buildings is None:
            return 0  # the first round only looks
        published = 0
        names = self._names
        last_seen = self._last_seen
        for i in np.flatnonzero(codes != previous):
            device = self._devices[i]
            self.hub.publish(
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
            published += 1
        for j in np.flatnonzero(building_codes != previous_buildings):
            building = self.site.buildings[j]
            counts: dict[str, dict[str, int]] = {}
            for row in range(int(self._bounds[j]), int(self._bounds[j + 1])):
                per_kind = counts.setdefault(self._devices[row].kind, {})
                name = names[codes[row]]
                per_kind[name] = per_kind.get(name, 0) + 1
            self.hub.publish(
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
            published += 1
        return published

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
