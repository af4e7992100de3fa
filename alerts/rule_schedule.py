"""When a rule may open a fault: its schedule (weekdays, minutes of the day) in the site's
local time, evaluated per reading. A portfolio's estates may lie in different time zones: then
each reading is judged in its device's own (`KindZones`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from alerts.interface import Schedule
from facility.batch import BoolArray, Int32Array, Int64Array, IntpArray


@dataclass(frozen=True, slots=True)
class KindZones:
    """The time zone of each device of a kind: `zones[of_device[row]]`."""

    zones: tuple[ZoneInfo, ...]
    of_device: IntpArray


def local_time(
    ts_ms: Int64Array, zone: ZoneInfo | KindZones, device: Int32Array | None = None
) -> tuple[Int64Array, Int64Array]:
    """(minute of the local day, weekday 0 = Monday) of each timestamp, in `zone` or in the
    zone of each reading's `device`; offsets are looked up once per distinct (hour, zone), so
    daylight-saving changes are honoured."""
    hours = ts_ms // 3_600_000
    if isinstance(zone, KindZones) and len(zone.zones) > 1 and device is not None:
        zones, count = zone.zones, len(zone.zones)
        keys = hours * count + zone.of_device[device]
    else:
        zones, count = ((zone,) if isinstance(zone, ZoneInfo) else zone.zones[:1]), 1
        keys = hours
    unique, inverse = np.unique(keys, return_inverse=True)
    offsets = np.array(
        [_offset_s(zones[k % count], k // count * 3600) for k in unique.tolist()], np.int64
    )
    local_ms = ts_ms + offsets[inverse] * 1000
    minutes = (local_ms // 60_000) % 1440
    weekday = (local_ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    return minutes, weekday


def _offset_s(zone: ZoneInfo, at_s: int) -> int:
    offset = zone.utcoffset(datetime.fromtimestamp(at_s, UTC))
    return int(offset.total_seconds()) if offset is not None else 0


def in_schedule(
    schedule: Schedule,
    ts_ms: Int64Array,
    zone: ZoneInfo | KindZones,
    device: Int32Array | None = None,
) -> BoolArray:
    """Per timestamp, whether it lies inside the schedule (a window past midnight wraps);
    `device`: each timestamp's device row, for `KindZones`."""
    if schedule.always:
        return np.ones(len(ts_ms), np.bool_)
    minutes, weekday = local_time(ts_ms, zone, device)
    ok = np.isin(weekday, list(schedule.weekdays))
    if schedule.minutes:
        inside = np.zeros(len(ts_ms), np.bool_)
        for start, end in schedule.minutes:
            if start <= end:
                inside |= (minutes >= start) & (minutes < end)
            else:  # past midnight
                inside |= (minutes >= start) | (minutes < end)
        ok &= inside
    return ok
