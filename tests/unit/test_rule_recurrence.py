"""Recurrence counts episodes separated by a real gap (the rule's `gap`, default 30 min), never
the flaps of one: hand-written leak-sensor and door sequences through the engine, the
reference loop and the work-order store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alerts.engine import RuleEngine
from alerts.rule_file import parse_rule_file
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.site import parse_site
from tests.readings import Reading, batch, chunks, ms, run_pack

SITE = parse_site(
    """
[site]
id = "s1"
timezone = "Asia/Shanghai"

[[buildings]]
id = "b1"

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "p1", kind = "pump", name = "Booster 1" },
  { id = "door", kind = "gate", name = "Pump room door" },
]
"""
)


def pump(t_s: float, *, wet: bool) -> Reading:
    """A healthy running pump whose leak sensor is wet or dry (live signals carry noise)."""
    n = t_s // 10
    return Reading(
        "p1",
        t_s,
        {
            "running": 1, "suction_bar": 1.5 + n % 7 / 100, "discharge_bar": 5.2 + n % 5 / 100,
            "flow_m3h": 20.0, "motor_current_a": 30 + n % 3, "motor_temp_c": 60 + n % 4 / 10,
            "vibration_mm_s": 1.1, "vfd_hz": 45.0, "tank_level_pct": 80.0, "leak": int(wet),
        },
    )  # fmt: skip


def leak(wet_spans: Sequence[tuple[float, float]], end_s: float) -> list[Reading]:
    """One reading every 10 s; wet inside the spans."""
    return [pump(t, wet=any(a <= t < b for a, b in wet_spans)) for t in range(0, round(end_s), 10)]


def file_through_store(tmp_path: Path, readings: list[Reading]) -> WorkOrderStore:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store)
    for part in chunks(readings, 600):
        sink.handle(batch(SITE, part))
    return store


# a wet sensor that dries for a few minutes and is wet again, three times in 40 minutes
FLAPPING = [(0, 600), (900, 1500), (1800, 2400)]


def test_a_leak_sensor_that_comes_and_goes_is_one_episode_for_recurrence() -> None:
    opened, cleared = run_pack(SITE, leak(FLAPPING, 3000), 600)
    assert [(f.rule_id, f.flap) for f in opened] == [
        ("pump.leak", False),
        ("pump.leak", True),
        ("pump.leak", True),
    ]
    assert len(cleared) == 3


def test_flaps_make_one_order_and_no_root_cause_order(tmp_path: Path) -> None:
    store = file_through_store(tmp_path, leak(FLAPPING, 3000))
    (order,) = store.list_work_orders()
    assert (order.rule_id, order.source, order.recurrences) == ("pump.leak", "fault", 0)
    notes = [e.note or "" for e in store.history(order.id) if e.event == "recurred"]
    assert len(notes) == 2
    assert all("not a recurrence" in n for n in notes), notes


def test_episodes_apart_by_more_than_the_gap_recur_and_raise_a_root_cause_order(
    tmp_path: Path,
) -> None:
    spans = [(0, 300), (3600, 3900), (7200, 7500)]  # wet for 5 minutes every hour
    store = file_through_store(tmp_path, leak(spans, 7800))
    orders = {str(o.source): o for o in store.list_work_orders()}
    assert set(orders) == {"fault", "root_cause"}
    assert orders["fault"].recurrences == 2
    assert orders["root_cause"].title.startswith("Recurring fault, find the root cause")


def test_repeat_counts_only_episodes_apart() -> None:
    pack = parse_rule_file(
        """
[[rules]]
id = "forced_often"
kind = "gate"
when = "forced_open"
repeat = { count = 3, within = "7d" }
severity = "minor"
title = "Forced often: {device}"
"""
    )

    def door(t: float, forced: bool) -> Reading:
        return Reading("door", t, {"door_open": int(forced), "forced_open": int(forced)})

    # forced, let go and forced again within minutes: one event, three times over a day: three
    forced_at = [0, 120, 240, 3 * 3600, 3 * 3600 + 60, 9 * 3600]
    readings = [door(t + d, forced=d == 0) for t in forced_at for d in (0, 30)]
    opened, _ = run_pack(SITE, readings, 3600, rule_set=pack)
    assert [(f.rule_id, f.started_ms) for f in opened] == [("forced_often", ms(9 * 3600))]
