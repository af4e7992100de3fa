"""Equipment status for stewards, decided in one place: `status_codes`, over every device and
building at once (numpy). The API's answers (`device_status`, `building_statuses`) and the
live-update monitor (`api.monitor`) all call it, so a page and a live event never disagree.

A device's status, the first that applies:
  alarm    an open work order of severity critical or major on it
  unknown  it has never reported
  offline  its last reading is older than its kind's heartbeat window
  warning  any other open work order on it (planned maintenance does not count)
  ok
A building shows its worst device (ok < unknown < warning < offline < alarm; unknown when it
has no devices), and at least the mark of any open order without a device (a resident's
report about the building): alarm when it is critical or major, else warning — a building
is never green while a resident's report about it is open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.interface import Severity
from alerts.store import DeviceState, WorkOrder
from alerts.workorders import Source
from facility.batch import BoolArray, Int64Array, IntpArray
from facility.catalog import KINDS
from facility.site import Building, Device


class Status(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    WARNING = "warning"
    OFFLINE = "offline"
    ALARM = "alarm"


STATUS_RANK = {s: i for i, s in enumerate(Status)}
"""A status's code: codes grow with urgency, so a building's is the max of its devices'."""
STATUSES = tuple(Status)
"""Code -> status."""
ALARM_SEVERITIES = frozenset({str(Severity.CRITICAL), str(Severity.MAJOR)})
NO_READING = -1
"""`last_seen_ms` of a device that never reported."""

Codes = npt.NDArray[np.int8]
NO_ORDER, OTHER_ORDER, ALARM_ORDER = 0, 1, 2
"""Per device, its most severe open order: none, another severity, critical or major."""


def order_mark(severity: str) -> int:
    return ALARM_ORDER if severity in ALARM_SEVERITIES else OTHER_ORDER


def heartbeat_ms(device: Device) -> int:
    return round(KINDS[device.kind].heartbeat_s * 1000)


def status_codes(
    *,
    now_ms: int,
    last_seen_ms: Int64Array,
    heartbeat_ms: Int64Array,
    orders: Codes,
    bounds: IntpArray,
    building_alarm: BoolArray,
    building_warning: BoolArray | None = None,
) -> tuple[Codes, Codes]:
    """(device codes, building codes) by the rules above.

    Per device (rows in building order): its last reading (`NO_READING` for never), its
    heartbeat window and its most severe open order (`NO_ORDER` / `OTHER_ORDER` /
    `ALARM_ORDER`). Building j holds rows `bounds[j]:bounds[j + 1]`; `building_alarm` marks
    the buildings with a serious open order that names no device, `building_warning` those
    with any other open order that names no device.
    """
    rank = STATUS_RANK
    codes: Codes = np.select(
        [
            orders == ALARM_ORDER,
            last_seen_ms == NO_READING,
            now_ms - last_seen_ms > heartbeat_ms,
            orders == OTHER_ORDER,
        ],
        [rank[Status.ALARM], rank[Status.UNKNOWN], rank[Status.OFFLINE], rank[Status.WARNING]],
        rank[Status.OK],
    ).astype(np.int8)
    buildings: Codes = np.full(len(bounds) - 1, rank[Status.UNKNOWN], np.int8)
    starts = bounds[:-1]
    filled = starts < bounds[1:]
    if len(codes):  # empty buildings are left out: each reduced run is one building's rows
        buildings[filled] = np.maximum.reduceat(codes, starts[filled])
    if building_warning is not None:
        buildings[building_warning] = np.maximum(buildings[building_warning], rank[Status.WARNING])
    buildings[building_alarm] = rank[Status.ALARM]
    return codes, buildings


@dataclass(frozen=True, slots=True)
class StatusRound:
    """One evaluation of a `StatusBoard`."""

    codes: Codes
    building_codes: Codes
    last_seen_ms: Int64Array


class StatusBoard:
    """Some buildings' devices in building order, with what does not change between rounds
    (rows, heartbeats, bounds) built once: the monitor keeps one for the whole site."""

    def __init__(self, buildings: Sequence[Building]) -> None:
        self.buildings = tuple(buildings)
        self.devices = tuple(d for b in self.buildings for d in b.devices)
        self.row = {d.id: i for i, d in enumerate(self.devices)}
        self.building_row = {b.id: j for j, b in enumerate(self.buildings)}
        sizes = [len(b.devices) for b in self.buildings]
        self.bounds: IntpArray = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self.heartbeat_ms: Int64Array = np.array([heartbeat_ms(d) for d in self.devices], np.int64)

    def evaluate(
        self,
        now_ms: int,
        last_seen_ms: Mapping[str, int],
        marks: Iterable[tuple[str | None, str, str]],
    ) -> StatusRound:
        """Statuses at `now_ms` from each device's last reading time and the open orders'
        (device_id, building_id, severity); orders about devices or buildings not on the
        board are left out."""
        seen = np.array([last_seen_ms.get(d.id, NO_READING) for d in self.devices], np.int64)
        orders: Codes = np.zeros(len(self.devices), np.int8)
        building_alarm = np.zeros(len(self.buildings), np.bool_)
        building_warning = np.zeros(len(self.buildings), np.bool_)
        for device_id, building_id, severity in marks:
            mark = order_mark(severity)
            if device_id is None:
                j = self.building_row.get(building_id)
                if j is not None:
                    (building_alarm if mark == ALARM_ORDER else building_warning)[j] = True
                continue
            i = self.row.get(device_id)
            if i is not None:
                orders[i] = max(orders[i], mark)
        codes, building_codes = status_codes(
            now_ms=now_ms,
            last_seen_ms=seen,
            heartbeat_ms=self.heartbeat_ms,
            orders=orders,
            bounds=self.bounds,
            building_alarm=building_alarm,
            building_warning=building_warning,
        )
        return StatusRound(codes, building_codes, seen)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device: Device
    status: Status
    last_seen_ms: int | None
    values: Mapping[str, Any]
    open_work_orders: tuple[WorkOrder, ...]


@dataclass(frozen=True, slots=True)
class BuildingStatus:
    building: Building
    status: Status
    devices: tuple[DeviceStatus, ...]
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per kind, how many devices are in each status."""


def _marks(orders: Iterable[WorkOrder]) -> list[tuple[str | None, str, str]]:
    """Planned maintenance (source `scheduled`) is no sign of trouble: it marks nothing."""
    return [
        (o.device_id, o.building_id, o.severity) for o in orders if o.source != Source.SCHEDULED
    ]


def building_statuses(
    buildings: Sequence[Building],
    states: Mapping[str, DeviceState],
    open_orders: Iterable[WorkOrder],
    now_ms: int,
) -> list[BuildingStatus]:
    """Each building's status with its devices', in one `status_codes` call."""
    open_orders = tuple(open_orders)
    board = StatusBoard(buildings)
    result = board.evaluate(
        now_ms, {i: s.last_seen_ms for i, s in states.items()}, _marks(open_orders)
    )
    by_device: dict[str, list[WorkOrder]] = {}
    for order in open_orders:
        if order.device_id is not None:
            by_device.setdefault(order.device_id, []).append(order)
    out = []
    for j, building in enumerate(board.buildings):
        devices = []
        counts: dict[str, Counter[str]] = {}
        for i in range(int(board.bounds[j]), int(board.bounds[j + 1])):
            device = board.devices[i]
            state = states.get(device.id)
            status = STATUSES[result.codes[i]]
            devices.append(
                DeviceStatus(
                    device=device,
                    status=status,
                    last_seen_ms=state.last_seen_ms if state else None,
                    values=state.values if state else {},
                    open_work_orders=tuple(by_device.get(device.id, ())),
                )
            )
            counts.setdefault(device.kind, Counter())[str(status)] += 1
        out.append(
            BuildingStatus(
                building,
                STATUSES[result.building_codes[j]],
                tuple(devices),
                {k: dict(v) for k, v in counts.items()},
            )
        )
    return out


def building_status(
    building: Building,
    states: Mapping[str, DeviceState],
    open_orders: Iterable[WorkOrder],
    now_ms: int,
) -> BuildingStatus:
    (status,) = building_statuses([building], states, open_orders, now_ms)
    return status


def device_status(
    device: Device, state: DeviceState | None, orders: Iterable[WorkOrder], now_ms: int
) -> DeviceStatus:
    """One device's status, given its open `orders`."""
    orders = tuple(orders)
    codes, _ = status_codes(
        now_ms=now_ms,
        last_seen_ms=np.array([state.last_seen_ms if state else NO_READING], np.int64),
        heartbeat_ms=np.array([heartbeat_ms(device)], np.int64),
        orders=np.array(
            [max((order_mark(sev) for _, _, sev in _marks(orders)), default=NO_ORDER)], np.int8
        ),
        bounds=np.array([0, 1], np.intp),
        building_alarm=np.zeros(1, np.bool_),
    )
    return DeviceStatus(
        device=device,
        status=STATUSES[codes[0]],
        last_seen_ms=state.last_seen_ms if state else None,
        values=state.values if state else {},
        open_work_orders=orders,
    )
