"""Each device model over a simulated week: every signal inside its catalog range (before the
runner's safety clip), and the daily patterns of a residential complex present."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from facility.catalog import KINDS, FieldType
from facility.site import Site
from gateway.decoder import Decoder
from simulators.clock import make_tick
from simulators.models import MODELS
from simulators.publisher import MemoryPublisher
from simulators.runner import FleetSimulator, SimulationSettings

WEEK_START_MS = 1_789_920_000_000  # Sunday 2026-09-20 23:20 Asia/Shanghai; a week follows
STEP_S = 300.0  # one reading per device per 5 simulated minutes


class Week:
    """Every model of the demo site stepped through a week: values[kind] is (ticks, devices,
    fields); hours and weekdays are the local time of each tick."""

    def __init__(self, site: Site) -> None:
        zone = ZoneInfo(site.timezone)
        ticks = [
            make_tick(i, WEEK_START_MS + int(i * STEP_S * 1000), STEP_S, zone)
            for i in range(int(7 * 86400 / STEP_S))
        ]
        self.hour = np.array([t.hour for t in ticks])
        self.weekend = np.array([t.weekend for t in ticks])
        self.values: dict[str, np.ndarray] = {}
        for kind, devices in site.by_kind.items():
            model = MODELS[kind](devices, 11, WEEK_START_MS)
            self.values[kind] = np.stack([model.step(t).copy() for t in ticks])

    def column(self, kind: str, name: str) -> np.ndarray:
        """(ticks, devices) of one field."""
        return self.values[kind][:, :, KINDS[kind].col(name)]

    def by_hour(
        self, kind: str, name: str, hours: tuple[float, float], *, weekdays: bool = True
    ) -> np.ndarray:
        mask = (self.hour >= hours[0]) & (self.hour < hours[1])
        if weekdays:
            mask &= ~self.weekend
        return self.column(kind, name)[mask]


@pytest.fixture(scope="module")
def week(demo_site: Site) -> Week:
    return Week(demo_site)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_signal_stays_inside_its_catalog_range(week: Week, kind: str) -> None:
    spec = KINDS[kind]
    values = week.values[kind].reshape(-1, len(spec.fields))
    assert not np.isnan(values).any()
    for col, f in enumerate(spec.fields):
        column = values[:, col]
        assert column.min() >= f.min, (f.name, column.min())
        assert column.max() <= f.max, (f.name, column.max())
        if f.type is not FieldType.FLOAT:
            assert np.all(column == np.round(column)), f.name
    # and the signals are alive: every analog one moves
    for col, f in enumerate(spec.fields):
        if f.type is FieldType.FLOAT:
            assert np.ptp(values[:, col]) > 0, f.name


def test_lifts_are_busiest_in_the_morning_and_evening_peaks(week: Week) -> None:
    night = week.by_hour("elevator", "running", (2, 5)).mean()
    midday = week.by_hour("elevator", "running", (11, 15)).mean()
    morning = week.by_hour("elevator", "running", (7.3, 8.5)).mean()
    evening = week.by_hour("elevator", "running", (18, 19.5)).mean()
    assert morning > 1.5 * midday > 3 * night
    assert evening > 1.5 * midday
    # the motor is warmer when it works, and the car stops within a few mm of the sill
    assert (
        week.by_hour("elevator", "motor_temp_c", (18, 20)).mean()
        > week.by_hour("elevator", "motor_temp_c", (3, 5)).mean() + 5
    )
    running = week.column("elevator", "running") == 1
    stopped_error = np.abs(week.column("elevator", "level_error_mm"))[~running]
    assert stopped_error.max() < 20
    assert np.abs(week.column("elevator", "level_error_mm"))[running].max() > 500
    door = week.column("elevator", "door_state")
    assert set(np.unique(door)) == {0.0, 1.0, 2.0, 3.0}
    assert week.column("elevator", "alarm_test_ok").min() == 1
    assert set(np.unique(week.column("elevator", "floor"))) >= {-1.0, 1.0, 10.0}


def test_water_demand_peaks_in_the_morning_and_evening_and_the_tank_follows(week: Week) -> None:
    flow = week.column("pump", "flow_m3h").sum(axis=1)  # the booster set
    hours = week.hour
    weekday = ~week.weekend

    def mean(lo: float, hi: float) -> float:
        return float(flow[weekday & (hours >= lo) & (hours < hi)].mean())

    assert mean(6.5, 8) > 2 * mean(14.5, 16) > 3 * mean(2, 4)
    assert mean(19, 21) > 2 * mean(14.5, 16)
    tank = week.column("pump", "tank_level_pct")[:, 0]
    assert (
        tank[weekday & (hours >= 4) & (hours < 5)].mean()
        > tank[weekday & (hours >= 8.5) & (hours < 9.5)].mean() + 3
    )
    running = week.column("pump", "running")
    assert np.all(running.sum(axis=1) >= 1)  # the lead pump always runs
    assert set(np.flatnonzero(running.any(axis=0))) == {0, 1, 2}  # duty rotates
    suction = week.column("pump", "suction_bar")[running == 1]
    assert suction.min() > 0.3


def test_lighting_is_on_at_night_and_off_in_daylight(week: Week, demo_site: Site) -> None:
    roles = [d.id.split("-")[-1] for d in demo_site.by_kind["lighting"]]
    stair = np.array([r == "stair" for r in roles])
    emergency = np.array([r == "emerg" for r in roles])
    on = week.column("lighting", "commanded_on")
    night = (week.hour >= 0.5) & (week.hour < 4.5)
    noon = (week.hour >= 11) & (week.hour < 13)
    assert on[night][:, stair].min() == 1
    assert on[noon][:, stair].max() == 0
    assert on[:, emergency].min() == 1  # maintained emergency lighting
    current = week.column("lighting", "current_a")
    assert current[on == 1].min() > 0.1
    assert current[on == 0].max() == 0
    lux = week.column("lighting", "lux")
    assert lux[noon][:, ~stair & ~emergency].mean() > 10_000  # landscape sensors are outdoors
    assert lux[night].max() < 200


def test_gates_see_people_at_the_peaks_and_nobody_forces_them(week: Week) -> None:
    granted = week.column("gate", "granted")
    hours = week.hour
    assert (
        granted[(hours >= 7.3) & (hours < 8.5)].mean()
        > 3 * granted[(hours >= 2) & (hours < 5)].mean()
    )
    assert week.column("gate", "forced_open").max() == 0
    assert week.column("gate", "denied").sum() > 0


def test_a_normal_day_raises_no_fault(demo_site: Site) -> None:
    settings = SimulationSettings(
        rate_hz=1 / 60,
        speed=0,
        duration_s=86400,
        start_ms=WEEK_START_MS,
        seed=3,
        readings_per_message=30,
    )
    out = MemoryPublisher()
    FleetSimulator(demo_site, settings).run(out)
    messages = out.messages
    result = Decoder(demo_site).decode(messages, now_ms=WEEK_START_MS + 86_400_000)
    assert result.rejections == []
    assert len(result.batch) == 86400 // 60 * len(demo_site.devices)
    assert (
        RuleEngine.from_rule_set(demo_site, default_rule_set()).evaluate(result.batch).opened == []
    )


def test_state_advances_with_dt_not_with_ticks(demo_site: Site) -> None:
    """The same hour sampled every second and every minute ends in the same tank and motor
    temperatures (first-order state), within noise."""
    zone = ZoneInfo(demo_site.timezone)
    ends = []
    for step_s in (1.0, 60.0):
        model = MODELS["pump"](demo_site.by_kind["pump"], 2, WEEK_START_MS)
        count = int(3600 / step_s)
        out = None
        for i in range(1, count + 1):
            out = model.step(make_tick(i, WEEK_START_MS + int(i * step_s * 1000), step_s, zone))
        assert out is not None
        ends.append(out)
    tank, temp = KINDS["pump"].col("tank_level_pct"), KINDS["pump"].col("motor_temp_c")
    assert np.allclose(ends[0][:, tank], ends[1][:, tank], atol=1.5)
    assert np.allclose(ends[0][:, temp], ends[1][:, temp], atol=1.5)
