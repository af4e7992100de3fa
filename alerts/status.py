"""Equipment status for stewards: each device's state and a building's, worst state wins."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from alerts.interface import Severity
from alerts.store import DeviceState, WorkOrder
from facility.catalog import KINDS
from facility.site import Building, Device


class Status(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    WARNING = "warning"
    OFFLINE = "offline"
    ALARM = "alarm"


STATUS_RANK = {s: i for i, s in enumerate(Status)}
_ALARM_SEVERITIES = {Severity.CRITICAL, Severity.MAJOR}


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


def device_status(
    device: Device, state: DeviceState | None, orders: Iterable[WorkOrder], now_ms: int
) -> DeviceStatus:
    orders = tuple(orders)
    if any(o.severity in _ALARM_SEVERITIES for o in orders):
        status = Status.ALARM
    elif state is None:
        status = Status.UNKNOWN
    elif now_ms - state.last_seen_ms > KINDS[device.kind].heartbeat_s * 1000:
        status = Status.OFFLINE
    elif orders:
        status = Status.WARNING
    else:
        status = Status.OK
    return DeviceStatus(
        device=device,
        status=status,
        last_seen_ms=state.last_seen_ms if state else None,
        values=state.values if state else {},
        open_work_orders=orders,
    )


def building_status(
    building: Building,
    states: Mapping[str, DeviceState],
    open_orders: Iterable[WorkOrder],
    now_ms: int,
) -> BuildingStatus:
    open_orders = tuple(open_orders)
    by_device: dict[str | None, list[WorkOrder]] = {}
    for order in open_orders:
        by_device.setdefault(order.device_id, []).append(order)
    devices = tuple(
        device_status(d, states.get(d.id), by_device.get(d.id, ()), now_ms)
        for d in building.devices
    )
    counts: dict[str, Counter[str]] = {}
    for ds in devices:
        counts.setdefault(ds.device.kind, Counter())[str(ds.status)] += 1
    worst = max((ds.status for ds in devices), key=STATUS_RANK.__getitem__, default=Status.UNKNOWN)
    # A building-level order without a device (a resident's report) still colours the building.
    if any(o.device_id is None and o.severity in _ALARM_SEVERITIES for o in open_orders):
        worst = Status.ALARM
    return BuildingStatus(building, worst, devices, {k: dict(v) for k, v in counts.items()})
