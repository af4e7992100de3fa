"""Local time of day for the simulated site, as arrays (daily patterns follow local hours)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def local_hour(ts_ms: int, timezone: str) -> float:
    """Hour of day (0-24, fractional) at `ts_ms` in the site's time zone."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(ZoneInfo(timezone))
    return moment.hour + moment.minute / 60 + moment.second / 3600


def daylight(hour: float) -> float:
    """0 at night, rising to 1 at noon (a rough sun curve between 06:00 and 18:00)."""
    if hour <= 6 or hour >= 18:
        return 0.0
    return math.sin(math.pi * (hour - 6) / 12)
