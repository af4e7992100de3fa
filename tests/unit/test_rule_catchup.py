"""Catch-up awareness: a gateway draining hours of buffered readings judges silence by the
readings' own time (the arrival lag), so the replay raises no site incident and no offline
device, while a site that really goes silent afterwards still does. Hand-written readings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.rule_faults import SITE_RULE_ID
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.batch import Batch
from facility.site import Site, parse_site
from gateway.decoder import Decoder
from simulators.injection import parse_injection
from simulators.publisher import Published
from simulators.runner import FleetSimulator, SimulationSettings
from tests.fakes import FakeClock
from tests.readings import T0, Reading, batch, chunks

SITE = parse_site(
    """
[site]
id = "s1"
timezone = "Asia/Shanghai"

[[buildings]]
id = "estate"

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "p1", kind = "pump", name = "Booster 1" },
  { id = "p2", kind = "pump", name = "Booster 2" },
]
"""
)
HOURS = 2


def healthy() -> list[Reading]:
    """Two healthy running pumps reporting every 10 s for two hours."""
    out = []
    for t in range(0, HOURS * 3600, 10):
        for i, pump in enumerate(("p1", "p2")):
            n = t // 10 + i
            out.append(
                Reading(
                    pump, t,
                    {"running": 1, "suction_bar": 1.4 + n % 7 / 100,
                     "discharge_bar": 5.0 + n % 5 / 100, "flow_m3h": 15.0 + n % 3,
                     "motor_current_a": 25 + n % 4, "motor_temp_c": 52 + n % 6 / 10,
                     "vibration_mm_s": 1.0 + n % 3 / 10, "vfd_hz": 42.0,
                     "tank_level_pct": 75.0 + n % 2 / 10, "leak": 0},
                )
            )  # fmt: skip
    return out


LIVE_S = 600


def outage_and_replay(
    engine: RuleEngine, clock: FakeClock, *, with_arrival: bool
) -> tuple[list[FaultOpened], list[FaultCleared]]:
    """Readings arrive live for 10 minutes; the link is then down until two hours have
    passed (the timer goes on ticking); then the buffer is drained, 5 minutes of readings
    every 3 s of wall time, the timer ticking every second between batches."""
    opened: list[FaultOpened] = []
    cleared: list[FaultCleared] = []

    def tick_until(end_ms: int, step_ms: int = 1000) -> None:
        while clock.now < end_ms:
            clock.now += step_ms
            result = engine.tick(clock.now)
            opened.extend(result.opened)
            cleared.extend(result.cleared)

    def deliver(part: list[Reading]) -> None:
        result = engine.evaluate(batch(SITE, part), arrived_ms=clock.now if with_arrival else None)
        opened.extend(result.opened)
        cleared.extend(result.cleared)

    readings = healthy()
    for part in chunks([r for r in readings if r.t_s < LIVE_S], 10):  # live
        tick_until(T0 + round(max(r.t_s for r in part) * 1000) + 500)
        deliver(part)
    tick_until(T0 + HOURS * 3_600_000 + 60_000, 5000)  # the link is down
    for part in chunks([r for r in readings if r.t_s >= LIVE_S], 300):  # the replay
        deliver(part)
        tick_until(clock.now + 3000)
    return opened, cleared


def start() -> tuple[RuleEngine, FakeClock]:
    clock = FakeClock(T0)
    engine = RuleEngine.from_rule_set(SITE, default_rule_set())
    engine.tick(clock.now)
    return engine, clock


def test_a_replayed_backlog_raises_no_new_site_incident_nor_offline_devices() -> None:
    engine, clock = start()
    opened, cleared = outage_and_replay(engine, clock, with_arrival=True)
    # the outage itself was a silent site; the replay ends it and raises nothing more
    assert [f.rule_id for f in opened] == [SITE_RULE_ID]
    assert [(c.rule_id, c.cleared_ms) for c in cleared] == [(SITE_RULE_ID, T0 + LIVE_S * 1000)]
    assert engine.arrival_lag_ms > 0


def test_without_the_arrival_time_the_replay_keeps_raising_site_incidents() -> None:
    """The control: judged by the wall clock, every replayed batch ends an incident and the
    next tick raises it again (the old behaviour)."""
    engine, clock = start()
    opened, _ = outage_and_replay(engine, clock, with_arrival=False)
    assert [f.rule_id for f in opened].count(SITE_RULE_ID) > 2


def test_a_site_that_goes_silent_after_the_replay_is_still_one_incident() -> None:
    engine, clock = start()
    outage_and_replay(engine, clock, with_arrival=True)
    opened = []
    for _ in range(60):  # nothing arrives any more
        clock.now += 1000
        opened += engine.tick(clock.now).opened
    assert [f.rule_id for f in opened] == [SITE_RULE_ID]


def test_the_sink_counts_the_arrival_lag_for_metrics(tmp_path: Path) -> None:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    clock = FakeClock(T0 + HOURS * 3_600_000 + 60_000)
    sink = AlertsSink(
        SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store, clock_ms=clock
    )
    first = chunks(healthy(), 600)[0]
    sink.handle(batch(SITE, first))
    (metric,) = [m for m in sink.prometheus() if m.name == "facility_rules_arrival_lag_seconds"]
    newest = max(r.t_s for r in first)
    assert metric.samples[()] == (clock.now - T0) / 1000 - newest
    assert store.list_work_orders() == []


def test_the_simulators_broker_outage_replayed_in_batches_is_one_incident(
    demo_site: Site, tmp_path: Path
) -> None:
    """The demo site at one reading a second; the simulator's broker link drops for 10 minutes
    and its devices then send their buffered readings at once; the gateway drains them in
    batches of 2,000 readings a second. The outage is one site incident, ended by the first
    replayed reading; nothing else is raised."""
    start = T0
    settings = SimulationSettings(
        rate_hz=1, speed=0, duration_s=1500, start_ms=start, seed=2, readings_per_message=1
    )
    simulator = FleetSimulator(
        demo_site, settings, [parse_injection("broker-disconnect@300+600", demo_site)]
    )
    decoder = Decoder(demo_site)
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    clock = FakeClock(start)
    sink = AlertsSink(
        demo_site, RuleEngine.from_rule_set(demo_site, default_rule_set()), store, clock_ms=clock
    )
    sink.tick(clock.now)
    queue: list[Batch] = []
    for number in range(1500):
        clock.now = start + number * 1000 + 500
        messages = [Published(t, p) for t, p in simulator.tick(number)]
        if messages:
            decoded = decoder.decode(messages, now_ms=clock.now).batch
            queue += [part for part in split(decoded, 2000)]
        if queue:  # one batch a second: a backlog takes a while to drain
            sink.handle(queue.pop(0))
        sink.tick(clock.now)
    orders = store.list_work_orders()
    assert [o.rule_id for o in orders] == [SITE_RULE_ID], [
        (o.rule_id, o.device_id, o.recurrences) for o in orders
    ]
    assert orders[0].cleared_ms is not None
    # judged by the wall clock, the drain ends and raises the incident again each second
    # (hundreds of recurrences on this order); by the readings' own time, never
    assert orders[0].recurrences == 0


def split(batch: Batch, size: int) -> list[Batch]:
    """The batch in parts of about `size` readings, oldest first (as a gateway drains)."""
    rows = sum(len(kb) for kb in batch)
    parts = max(1, -(-rows // size))
    out = []
    for i in range(parts):
        kinds = {}
        for name, kb in batch.kinds.items():
            order = np.argsort(kb.ts_ms, kind="stable")
            edges = np.linspace(0, len(kb), parts + 1).astype(int)
            kinds[name] = kb.take(order[edges[i] : edges[i + 1]])
        out.append(Batch(batch.site_id, kinds))
    return out
