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
import threading
from typing import Any

from alerts.status import building_status
from alerts.store import DeviceState, WorkOrderStore
from api.events import EventHub
from facility.clock import Clock
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
        self._buildings: dict[str, str] = {}
        self._devices: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="change-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the feed goes on; the next round tries again
                self.errors += 1
                log.exception("change monitor round failed")
            self._stop.wait(self.interval_s)

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
        now = self.clock_ms()
        last_seen = self.store.devices_last_seen()
        orders: dict[str, list[Any]] = {}
        for order in self.store.open_work_orders():
            orders.setdefault(order.building_id, []).append(order)
        first = not self._buildings
        published = 0
        for building in self.site.buildings:
            states = {
                d.id: DeviceState(d.id, d.kind, building.id, last_seen[d.id], 0, {})
                for d in building.devices
                if d.id in last_seen
            }
            bs = building_status(building, states, orders.get(building.id, ()), now)
            for ds in bs.devices:
                status, before = str(ds.status), self._devices.get(ds.device.id)
                self._devices[ds.device.id] = status
                if not first and status != before:
                    self.hub.publish(
                        "device_status",
                        building.id,
                        {
                            "device_id": ds.device.id,
                            "building_id": building.id,
                            "unit_id": ds.device.unit_id,
                            "kind": ds.device.kind,
                            "status": status,
                            "previous": before,
                            "last_seen_ms": ds.last_seen_ms,
                            "at_ms": now,
                        },
                    )
                    published += 1
            status, before = str(bs.status), self._buildings.get(building.id)
            self._buildings[building.id] = status
            if not first and status != before:
                self.hub.publish(
                    "building_status",
                    building.id,
                    {
                        "building_id": building.id,
                        "status": status,
                        "previous": before,
                        "counts": bs.counts,
                        "open_work_orders": len(orders.get(building.id, ())),
                        "at_ms": now,
                    },
                )
                published += 1
        return published
