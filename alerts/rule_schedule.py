"""When a rule may open a fault: its schedule (weekdays, minutes of the day) in the site's
local time, evaluated per reading.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from alerts.interface import Schedule
from facility.batch import BoolArray, Int64Array


def local_time(ts_ms: Int64Array, zone: ZoneInfo) -> tuple[Int64Array, Int64Array]:
    """(minute of the local day, weekday 0 = Monday) of each timestamp; offsets are looked up
    once per distinct hour, so daylight-saving changes are honoured."""
    hours = ts_ms // 3_600_000
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array(
        [
            int(zone.utcoffset(datetime.fromtimestamp(int(h) * 3600, UTC)).total_seconds())  # type: ignore[union-attr]
            for h in unique
        ],
        np.int64,
    )
    local_ms = ts_ms + offsets[inverse] * 1000
    minutes = (local_ms // 60_000) % 1440
    weekday = (local_ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    return minutes, weekday


def in_schedule(schedule: Schedule, ts_ms: Int64Array, zone: ZoneInfo) -> BoolArray:
    """Per timestamp, whether it lies inside the schedule (a window past midnight wraps)."""
    if schedule.always:
        return np.ones(len(ts_ms), np.bool_)
    minutes, weekday = local_time(ts_ms, zone)
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
