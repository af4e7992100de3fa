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

import numpy as np
import numpy.typing as npt

from alerts.interface import Severity
from alerts.status import STATUS_RANK, Status
from alerts.store import WorkOrderStore
from api.events import EventHub
from facility.catalog import KINDS
from facility.clock import Clock
from facility.site import Site

log = logging.getLogger(__name__)
IntArray = npt.NDArray[np.int8]
ALARM_SEVERITIES = frozenset({str(Severity.CRITICAL), str(Severity.MAJOR)})
"""As in `alerts.status`: an open order of these severities puts its device in alarm."""


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
        # Devices in building order; building j's are rows _bounds[j]:_bounds[j + 1].
        self._devices = [d for b in site.buildings for d in b.devices]
        self._row = {d.id: i for i, d in enumerate(self._devices)}
        sizes = [len(b.devices) for b in site.buildings]
        self._bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self._heartbeat_ms = np.array(
            [KINDS[d.kind].heartbeat_s * 1000 for d in self._devices], dtype=np.int64
        )
        self._names = [str(s) for s in sorted(STATUS_RANK, key=STATUS_RANK.__getitem__)]
        self._codes: IntArray | None = None
        self._building_codes: IntArray | None = None
        self._last_seen = np.zeros(0, dtype=np.int64)
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
        """Every device's status as one array (the rules of `alerts.status`, vectorised: a
        round stays a few ms at 10k devices), and events for what changed."""
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
                    "last_seen_ms": int(last_seen[i]) if last_seen[i] >= 0 else None,
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

    def _evaluate(self, now: int) -> tuple[IntArray, IntArray, dict[str, int]]:
        """(device status codes, building status codes, open orders per building)."""
        seen = self.store.devices_last_seen()
        last_seen = np.array([seen.get(d.id, -1) for d in self._devices], dtype=np.int64)
        self._last_seen = last_seen
        rank = STATUS_RANK
        codes = np.where(
            last_seen < 0,
            rank[Status.UNKNOWN],
            np.where(now - last_seen > self._heartbeat_ms, rank[Status.OFFLINE], rank[Status.OK]),
        ).astype(np.int8)
        alarm, warning = rank[Status.ALARM], rank[Status.WARNING]
        unknown, offline = rank[Status.UNKNOWN], rank[Status.OFFLINE]
        per_building: dict[str, int] = {}
        building_alarm: set[str] = set()
        for device_id, building_id, severity in self.store.open_order_marks():
            per_building[building_id] = per_building.get(building_id, 0) + 1
            serious = severity in ALARM_SEVERITIES
            i = self._row.get(device_id or "")
            if i is None:
                if serious:
                    building_alarm.add(building_id)
                continue
            if serious:
                codes[i] = alarm
            elif codes[i] not in (alarm, unknown, offline):
                codes[i] = warning
        # Worst device per building (devices are in building order); an empty one is unknown.
        building_codes = np.full(len(self.site.buildings), rank[Status.UNKNOWN], dtype=np.int8)
        filled = self._bounds[:-1] < self._bounds[1:]
        if len(codes):
            building_codes[filled] = np.maximum.reduceat(codes, self._bounds[:-1][filled])
        for j, building in enumerate(self.site.buildings):
            if building.id in building_alarm:
                building_codes[j] = alarm
        return codes, building_codes, per_building
