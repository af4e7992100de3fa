"""The default rule pack against the simulators: every rule fires on its fault, a fault-free
day of the demo site raises nothing, duplicates and shuffles make one work order, a restart
keeps a `for` timer, and a silent device is offline within its heartbeat + 2 s."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from alerts.engine import RuleEngine
from alerts.faults import FaultOpened
from alerts.rule_faults import SITE_RULE_ID
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.batch import Batch
from facility.catalog import KINDS
from facility.site import Site, parse_site
from gateway.decoder import Decoder
from simulators.injection import parse_injection
from simulators.publisher import MemoryPublisher, Published
from simulators.runner import FleetSimulator, SimulationSettings
from tests.fakes import FakeClock

START_MS = 1_789_920_000_000  # Sunday 2026-09-20 23:20 in Asia/Shanghai
H = 3600.0
MINI = parse_site(
    """
[site]
id = "mini"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "b1-u1"
devices = [
  { id = "b1-u1-el1", kind = "elevator", name = "Elevator 1" },
  { id = "b1-u1-el2", kind = "elevator", name = "Elevator 2" },
  { id = "b1-u1-stair", kind = "lighting", name = "Stairwell lighting" },
  { id = "b1-u1-emerg", kind = "lighting", name = "Emergency", params = { day_burning_check = 0 } },
  { id = "b1-u1-door", kind = "gate", name = "Unit door" },
]

[[buildings]]
id = "estate"

[[buildings.units]]
id = "main-gates"
params = { gate_has_motor = 1, gate_held_open_s = 7200 }
devices = [{ id = "gate-north", kind = "gate", name = "North main gate" }]

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "pump-1", kind = "pump", name = "Booster pump 1" },
  { id = "pump-2", kind = "pump", name = "Booster pump 2" },
  { id = "pump-3", kind = "pump", name = "Booster pump 3" },
]
"""
)


def simulate(
    site: Site,
    *,
    rate_hz: float,
    duration_s: float,
    start_h: float = 0.0,
    inject: Iterable[str] = (),
    seed: int = 1,
) -> Batch:
    """The site's readings as one decoded batch (rows in arrival order)."""
    start = START_MS + round(start_h * H * 1000)
    settings = SimulationSettings(
        rate_hz=rate_hz,
        speed=0,
        duration_s=duration_s,
        start_ms=start,
        seed=seed,
        readings_per_message=120,
    )
    injections = [parse_injection(text, site, seed=seed) for text in inject]
    out = MemoryPublisher()
    FleetSimulator(site, settings, injections).run(out)
    result = Decoder(site).decode(out.messages, now_ms=start + round(duration_s * 1000) + 1)
    assert result.rejections == []
    return result.batch


def until(batch: Batch, start_ms: int, end_ms: int) -> Batch:
    kinds = {}
    for name, kb in batch.kinds.items():
        part = kb.take((kb.ts_ms >= start_ms) & (kb.ts_ms < end_ms))
        if len(part):
            kinds[name] = part
    return Batch(batch.site_id, kinds)


def shuffled(batch: Batch, seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        batch.site_id, {k: kb.take(rng.permutation(len(kb))) for k, kb in batch.kinds.items()}
    )


# -- every rule fires on its fault ------------------------------------------------------------

# rule -> (injection, readings per second, simulated seconds, start: local hours after 23:20)
CASES: dict[str, tuple[str, float, float, float]] = {
    "elevator.entrapment": ("elevator-entrapment:b1-u1-el1@60+300", 1, 400, 0),
    "elevator.alarm_self_test": ("missed-alarm-test:b1-u1-el1@60", 1 / 900, 73 * H, 0),
    "elevator.levelling_warning": (
        "levelling-drift:b1-u1-el1@60/mm_per_day=1e9/max_mm=15",
        0.2,
        1 * H,
        8,
    ),
    "elevator.levelling_major": (
        "levelling-drift:b1-u1-el1@60/mm_per_day=1e9/max_mm=30",
        0.2,
        1 * H,
        8,
    ),
    "elevator.door_reopening": ("door-obstruction:b1-u1-el1@60", 0.2, 1 * H, 8),
    "elevator.door_slow": (
        "slow-doors:b1-u1-el1@1.5h/rate_per_day=1e9/max_factor=4",
        0.2,
        2.5 * H,
        8,
    ),
    "elevator.motor_overheating": ("motor-overheating:b1-u1-el1@60/extra_c=200", 0.1, 1 * H, 8),
    "elevator.motor_temp_rising": ("motor-overheating:b1-u1-el1@60/extra_c=80", 0.1, 1 * H, 8),
    "elevator.vibration": ("bearing-wear:b1-u1-el1@60/rate_per_day=1e9", 0.2, 1 * H, 8),
    "pump.dry_run": ("pump-dry-run:pump-1@60", 1, 300, 0),
    "pump.cavitation": ("pump-cavitation:pump-room@60", 1, 900, 8),
    "pump.vibration_zone_c": ("pump-bearing-wear:pump-room@60/rate_per_day=1e9", 0.2, 1 * H, 8),
    "pump.tank_falling": ("low-tank:pump-1@60", 1 / 30, 4 * H, 8),
    "pump.tank_low": ("low-tank:pump-1@60", 1 / 30, 4 * H, 8),
    "pump.tank_critical": ("low-tank:pump-1@60", 1 / 30, 4 * H, 8),
    "pump.leak": ("pump-leak:pump-1@60", 1, 120, 0),
    "gate.forced_open": ("gate-forced-open:b1-u1-door@60+60", 1, 200, 0),
    "gate.held_open": ("gate-held-open:b1-u1-door@60+1800", 0.1, 1 * H, 0),
    "gate.card_reader_failure": ("card-reader-failure:b1-u1-door@60", 0.2, 1 * H, 8),
    "lighting.circuit_dark": ("lighting-circuit-dark:b1-u1-stair@60", 1, 300, 0),
    "lighting.lamp_failures": ("lamp-failures:b1-u1-stair@60", 1, 300, 0),
    "lighting.day_burning": ("day-burning:b1-u1-stair@60", 0.1, 1.5 * H, 11),
    "lighting.emergency_battery": ("emergency-battery-failure:b1-u1-emerg@60", 1, 120, 0),
    # a sensor must move only while its signal is live: the car running, the barrier in its
    # stroke, the circuit lit (moving(field) in the catalog), so these run by day
    "sensor.flat_line.elevator": ("sensor-flat-line:b1-u1-el1@60", 0.2, 0.3 * H, 8),
    "sensor.flat_line.pump": ("sensor-flat-line:pump-1@60", 0.2, 0.3 * H, 0),
    "sensor.flat_line.gate": ("sensor-flat-line:gate-north@60", 1, 0.5 * H, 8),
    "sensor.flat_line.lighting": ("sensor-flat-line:b1-u1-stair@60", 0.2, 0.3 * H, 0),
    "sensor.wire_cut.elevator": ("sensor-wire-cut:b1-u1-el1@60", 1, 120, 0),
    "sensor.wire_cut.pump": ("sensor-wire-cut:pump-1@60", 1, 120, 0),
    "sensor.wire_cut.gate": ("sensor-wire-cut:gate-north@60", 1, 0.5 * H, 8),
    "sensor.wire_cut.lighting": ("sensor-wire-cut:b1-u1-stair@60", 1, 120, 0),
}
TIMED = {"device.offline", "gate.forced_open_repeated"}
"""Rules with tests of their own below (the timer; three episodes in a week)."""


def test_every_rule_of_the_pack_has_a_fault_case() -> None:
    assert {r.id for r in default_rule_set().rules} == set(CASES) | TIMED


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_the_rule_fires_on_its_fault(rule_id: str) -> None:
    injection, rate_hz, seconds, start_h = CASES[rule_id]
    targets = {d.id for d in parse_injection(injection, MINI).devices}
    batch = simulate(MINI, rate_hz=rate_hz, duration_s=seconds, start_h=start_h, inject=[injection])
    opened = RuleEngine.from_rule_set(MINI, default_rule_set()).evaluate(batch).opened
    hits = [f for f in opened if f.rule_id == rule_id]
    assert hits, sorted({(f.rule_id, f.device_id) for f in opened})
    assert {f.device_id for f in hits} <= targets
    # the fault is the one injected: nothing fires on a device it did not touch
    assert {f.device_id for f in opened} <= targets, sorted(
        (f.rule_id, f.device_id) for f in opened
    )
    rule = next(r for r in default_rule_set().rules if r.id == rule_id)
    assert all(f.category == rule.category for f in hits)


def test_three_forced_openings_in_a_week_raise_one_maintenance_fault() -> None:
    injections = [f"gate-forced-open:b1-u1-door@{d}+120" for d in ("1h", "1d", "2d")]
    batch = simulate(MINI, rate_hz=1 / 60, duration_s=2.2 * 86400, inject=injections)
    opened = RuleEngine.from_rule_set(MINI, default_rule_set()).evaluate(batch).opened
    assert [f.rule_id for f in opened].count("gate.forced_open") == 3
    repeated = [f for f in opened if f.rule_id == "gate.forced_open_repeated"]
    assert [(f.device_id, f.severity) for f in repeated] == [("b1-u1-door", "minor")]
    assert repeated[0].started_ms >= START_MS + 2 * 86_400_000  # at the third episode


def test_sensor_faults_are_kept_apart_from_equipment_faults() -> None:
    # a cut suction transducer reads -1 bar: a sensor fault, not a dry run
    batch = simulate(
        MINI, rate_hz=1, duration_s=200, inject=["sensor-wire-cut:pump-1@20/signal=suction_bar"]
    )
    opened = RuleEngine.from_rule_set(MINI, default_rule_set()).evaluate(batch).opened
    assert [(f.rule_id, f.category) for f in opened] == [("sensor.wire_cut.pump", "sensor")]


# -- a fault-free day -------------------------------------------------------------------------


def fault_free_orders(site: Site, days: float, tmp_path: Path) -> list[str]:
    """`days` of the demo site at one reading per device and minute, fault-free, streamed:
    the simulator is stepped and its messages decoded 5 minutes at a time, each 5 minutes a
    batch through the alerts sink into a work-order store, the timer ticking between them (30 s
    after each minute's readings: devices that report every 60 s). Memory stays bounded by
    the 5 minutes at hand. Returns what work orders it raised."""
    settings = SimulationSettings(
        rate_hz=1 / 60, speed=0, duration_s=days * 86400, start_ms=START_MS, seed=5,
        readings_per_message=5,
    )  # fmt: skip
    simulator = FleetSimulator(site, settings, [])
    decoder = Decoder(site)
    store = _store(tmp_path)
    clock = FakeClock(START_MS)
    sink = AlertsSink(
        site, RuleEngine.from_rule_set(site, default_rule_set()), store, clock_ms=clock
    )
    sink.tick(START_MS)
    for chunk in range(round(days * 86400 / 300)):
        messages = [
            Published(topic, payload)
            for number in range(chunk * 5, chunk * 5 + 5)
            for topic, payload in simulator.tick(number)
        ]
        t = START_MS + chunk * 300_000
        clock.now = t + 300_000 - 59_000  # the last minute's readings have just arrived
        result = decoder.decode(messages, now_ms=clock.now)
        assert result.rejections == []
        sink.handle(result.batch)
        sink.tick(t + 300_000 - 30_000)
    return [f"{o.rule_id} {o.device_id} {o.title}" for o in store.list_work_orders()]


def test_a_fault_free_week_of_the_demo_site_raises_no_order(
    demo_site: Site, tmp_path: Path
) -> None:
    assert fault_free_orders(demo_site, 7, tmp_path) == []


# -- exactly one work order -------------------------------------------------------------------


def _store(tmp_path: Path) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    return store


def test_the_same_fault_readings_twice_and_shuffled_make_one_work_order(tmp_path: Path) -> None:
    batch = simulate(MINI, rate_hz=1, duration_s=200, inject=["pump-dry-run:pump-1@20"])
    store = _store(tmp_path)
    sink = AlertsSink(MINI, RuleEngine.from_rule_set(MINI, default_rule_set()), store)
    twice = Batch.concat("mini", [shuffled(batch, 1), shuffled(batch, 2)])
    sink.handle(shuffled(twice, 3))
    sink.handle(shuffled(batch, 4))  # delivered again, later
    # a gateway restarted without its state sees them all once more
    again = AlertsSink(MINI, RuleEngine.from_rule_set(MINI, default_rule_set()), store)
    for part in (until(batch, START_MS, START_MS + 100_000), shuffled(batch, 5)):
        again.handle(part)
    orders = store.list_work_orders()
    assert [(o.rule_id, o.device_id, o.fault_started_ms) for o in orders] == [
        ("pump.dry_run", "pump-1", START_MS + 20_000)
    ]


# -- restarts and silence ---------------------------------------------------------------------


def test_a_restart_in_the_middle_of_a_for_keeps_the_timer(tmp_path: Path) -> None:
    batch = simulate(MINI, rate_hz=1, duration_s=120, inject=["pump-dry-run:pump-1@20"])
    state = tmp_path / "rules-state.npz"
    store = _store(tmp_path)
    before = AlertsSink(
        MINI, RuleEngine.from_rule_set(MINI, default_rule_set()), store, checkpoint_path=state
    )
    before.handle(until(batch, START_MS, START_MS + 40_000))  # dry from 20 s: 20 s of 30
    before.checkpoint()
    assert store.list_work_orders() == []
    after = AlertsSink(
        MINI, RuleEngine.from_rule_set(MINI, default_rule_set()), store, checkpoint_path=state
    )
    after.handle(until(batch, START_MS + 40_000, START_MS + 51_000))
    (order,) = store.list_work_orders()
    assert (order.rule_id, order.fault_started_ms, order.detected_ms) == (
        "pump.dry_run",
        START_MS + 20_000,
        START_MS + 50_000,  # 30 s after the start, as without the restart
    )


def test_a_device_that_stops_reporting_is_offline_within_its_heartbeat_plus_2_s(
    demo_site: Site,
) -> None:
    batch = simulate(demo_site, rate_hz=1, duration_s=150, inject=["device-silent:pump-2@20"])
    clock = FakeClock(START_MS)
    engine = RuleEngine.from_rule_set(demo_site, default_rule_set())
    engine.tick(clock())
    opened: list[FaultOpened] = []
    for second in range(150):  # readings arrive each second; the timer ticks each second
        clock.now = START_MS + second * 1000 + 500
        opened += engine.evaluate(until(batch, clock.now - 1000, clock.now)).opened
        opened += engine.tick(clock.now).opened
    (fault,) = opened
    last_heard = START_MS + 19_000
    heartbeat_ms = round(KINDS["pump"].heartbeat_s * 1000)
    assert (fault.rule_id, fault.device_id, fault.started_ms) == (
        "device.offline",
        "pump-2",
        last_heard,
    )
    assert last_heard + heartbeat_ms < fault.detected_ms <= last_heard + heartbeat_ms + 2000


def test_a_site_that_loses_power_is_one_incident(demo_site: Site) -> None:
    batch = simulate(demo_site, rate_hz=1, duration_s=300, inject=["site-power-loss@30+200"])
    engine = RuleEngine.from_rule_set(demo_site, default_rule_set())
    engine.tick(START_MS)
    opened: list[FaultOpened] = []
    cleared = []
    for second in range(300):
        now = START_MS + second * 1000 + 500
        result = engine.evaluate(until(batch, now - 1000, now))
        opened += result.opened
        cleared += result.cleared
        opened += engine.tick(now).opened
    assert [f.rule_id for f in opened] == [SITE_RULE_ID]
    assert [c.rule_id for c in cleared] == [SITE_RULE_ID]


def test_shuffled_delivery_gives_the_same_faults_as_ordered() -> None:
    batch = simulate(
        MINI, rate_hz=0.2, duration_s=1 * H, start_h=8, inject=["door-obstruction:b1-u1-el1@60"]
    )
    ordered = RuleEngine.from_rule_set(MINI, default_rule_set()).evaluate(batch).opened
    chunks = [
        shuffled(until(batch, t, t + 600_000), t)
        for t in range(START_MS + 8 * 3_600_000, START_MS + 9 * 3_600_000, 600_000)
    ]
    engine = RuleEngine.from_rule_set(MINI, default_rule_set())
    got = [f for c in chunks for f in engine.evaluate(c).opened]
    assert sorted(map(repr, got)) == sorted(map(repr, ordered)) != []


# -- one order per physical fault (the simulators) ---------------------------------------------


def test_one_physical_fault_is_one_work_order(demo_site: Site, tmp_path: Path) -> None:
    """The demo site's break tank drains (seen by its three pumps), one car's levelling drifts
    past 10 mm and then past 20 mm, another car's door is obstructed (re-opening and slow):
    three faults, three work orders, whatever the rules that saw them."""
    injections = [
        "low-tank:pump-1@60",
        "levelling-drift:b01-u1-el1@60/mm_per_day=240/max_mm=30",  # 10 mm an hour
        "door-obstruction:b02-u1-el1@60",
    ]
    batch = simulate(demo_site, rate_hz=1 / 30, duration_s=4 * H, start_h=8, inject=injections)
    store = _store(tmp_path)
    sink = AlertsSink(demo_site, RuleEngine.from_rule_set(demo_site, default_rule_set()), store)
    start = START_MS + 8 * 3_600_000
    for t in range(start, start + 4 * 3_600_000, 300_000):
        sink.handle(until(batch, t, t + 300_000))
    orders = {o.device_id or "": o for o in store.list_work_orders()}
    assert sorted(orders) == ["b01-u1-el1", "b02-u1-el1", "break-tank"], [
        (o.rule_id, o.device_id) for o in orders.values()
    ]
    tank, drift, door = orders["break-tank"], orders["b01-u1-el1"], orders["b02-u1-el1"]
    assert tank.severity == "critical"
    tank_notes = " ".join(e.note or "" for e in store.history(tank.id))
    assert all(p in tank_notes for p in ("pump-1", "pump-2", "pump-3"))
    assert (drift.rule_id, drift.severity) == ("elevator.levelling_major", "major")
    assert "escalated" in [e.event for e in store.history(drift.id)]
    assert door.rule_id in ("elevator.door_reopening", "elevator.door_slow")


def test_a_card_reader_dead_for_two_and_a_half_hours_is_one_episode() -> None:
    """Refused cards come in bursts and lulls; the reader is fixed when a card works again."""
    batch = simulate(
        MINI, rate_hz=0.2, duration_s=4 * H, start_h=8,
        inject=["card-reader-failure:b1-u1-door@600+9000"],
    )  # fmt: skip
    result = RuleEngine.from_rule_set(MINI, default_rule_set()).evaluate(batch)
    opened = [f for f in result.opened if f.rule_id == "gate.card_reader_failure"]
    cleared = [c for c in result.cleared if c.rule_id == "gate.card_reader_failure"]
    assert len(opened) == 1
    assert len(cleared) == 1
    repaired = START_MS + 8 * 3_600_000 + 9_600_000
    assert repaired <= cleared[0].cleared_ms < repaired + 3_600_000
