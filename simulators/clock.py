"""Simulated time: the local calendar of the site and the daily patterns that follow it.

Every pattern is a pure function of local time, so devices sampled at any rate see the same
day. Peaks (residential): people leave 07:00-09:00 on weekdays (later and flatter at weekends)
and come home 17:30-20:00; water demand peaks with showers and cooking; the sun rises and sets
with the season.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Tick:
    """One instant of simulated time, and what the models need to know about it."""

    number: int
    ts_ms: int
    dt_s: float
    """Simulated seconds since the previous tick (state advances by this much)."""
    hour: float
    """Local hour of day, fractional."""
    weekday: int
    """0 = Monday."""
    day_of_year: int

    @property
    def t_s(self) -> float:
        return self.ts_ms / 1000.0

    @property
    def weekend(self) -> bool:
        return self.weekday >= 5


def make_tick(number: int, ts_ms: int, dt_s: float, zone: ZoneInfo) -> Tick:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(zone)
    hour = moment.hour + moment.minute / 60 + (moment.second + moment.microsecond / 1e6) / 3600
    return Tick(number, ts_ms, dt_s, hour, moment.weekday(), moment.timetuple().tm_yday)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def people_traffic(hour: float, weekend: bool = False) -> float:
    """Movement of residents (lifts, doors, gates): 0.04 at night, 1.0 at the weekday peaks."""
    if weekend:
        morning = 0.7 * _bump(hour, 10.0, 1.8)
        evening = 0.85 * _bump(hour, 18.0, 2.0)
    else:
        morning = _bump(hour, 7.9, 0.9)
        evening = 0.9 * _bump(hour, 18.6, 1.3)
    day = 0.28 if 7.0 <= hour <= 22.5 else (0.12 if 6.0 <= hour <= 23.5 else 0.04)
    return max(day, morning, evening)


def water_demand(hour: float, weekend: bool = False) -> float:
    """Domestic water demand relative to the daily peak: showers in the morning, cooking and
    showers in the evening, almost nothing at 03:00."""
    shift = 1.2 if weekend else 0.0
    morning = _bump(hour, 7.2 + shift, 1.1)
    evening = 0.9 * _bump(hour, 20.0, 1.6)
    midday = 0.45 * _bump(hour, 12.3, 1.2)
    base = 0.35 if 6.0 <= hour <= 23.0 else 0.08
    return max(base, morning, evening, midday)


def day_length_h(day_of_year: int) -> float:
    """Hours of daylight at a mid-northern latitude (~31 N): 10.2 h in winter, 13.8 in summer."""
    return 12.0 + 1.8 * math.sin(2 * math.pi * (day_of_year - 80) / 365.0)


def sun(hour: float, day_of_year: int) -> float:
    """Sun height factor 0..1: 0 from dusk to dawn, 1 at solar noon (12:00 local)."""
    half = day_length_h(day_of_year) / 2
    if abs(hour - 12.0) >= half:
        return 0.0
    return math.cos(math.pi / 2 * (hour - 12.0) / half)
