"""Shared assets: a break tank seen by the three pumps of a booster set has one fault, one
work order on the tank listing the pumps that saw it (hand-written readings of a draining
tank), and the site file's `[[assets]]` mistakes name their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.errors import SiteFileError
from facility.site import parse_site
from tests.readings import Reading, batch, chunks, run_pack

SITE_TEXT = """
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
  { id = "p3", kind = "pump", name = "Booster 3" },
]

[[assets]]
id = "tank"
name = "Break tank"
type = "break_tank"
devices = ["p1", "p2", "p3"]
"""
SITE = parse_site(SITE_TEXT)


def draining() -> list[Reading]:
    """The tank falls from 60 % by 1 % a minute (the inlet valve stuck shut); each pump's
    level transmitter reads it with its own small offset, one reading every 20 s."""
    out = []
    for t in range(0, 3600, 20):
        level = max(60.0 - t / 60, 2.0)
        for i, pump in enumerate(("p1", "p2", "p3")):
            n = t // 20 + i
            out.append(
                Reading(
                    pump, t,
                    {"running": 1, "suction_bar": 1.2 + n % 7 / 100,
                     "discharge_bar": 5.1 + n % 5 / 100, "flow_m3h": 18.0,
                     "motor_current_a": 28 + n % 3, "motor_temp_c": 55 + n % 4 / 10,
                     "vibration_mm_s": 1.0, "vfd_hz": 44.0,
                     "tank_level_pct": level + (i - 1) * 0.6, "leak": 0},
                )
            )  # fmt: skip
    return out


def test_the_engine_raises_one_fault_per_rule_on_the_tank() -> None:
    opened, cleared = run_pack(SITE, draining(), 300)
    assert [(f.rule_id, f.device_id) for f in opened] == [
        ("pump.tank_falling", "tank"),  # the early warning, with its time to the low mark
        ("pump.tank_low", "tank"),
        ("pump.tank_critical", "tank"),
    ]
    falling, low, critical = opened
    # 1 %/min falling and 25 % the low mark: the minutes left are the level above it
    level = float(falling.title.split(" at ")[1].split(" %")[0])
    minutes = float(falling.title.split("about ")[1].split(" min")[0])
    assert falling.title.startswith("Break tank falling: Break tank at ")
    assert abs(minutes - (level - 25)) <= 2, falling.title
    assert "Break tank sees" in low.title
    assert "Break tank sees" in critical.title
    assert cleared == []


def test_one_draining_tank_seen_by_three_pumps_is_one_order(tmp_path: Path) -> None:
    store = WorkOrderStore(make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    store.migrate()
    sink = AlertsSink(SITE, RuleEngine.from_rule_set(SITE, default_rule_set()), store)
    for part in chunks(draining(), 300):
        sink.handle(batch(SITE, part))
    (order,) = store.list_work_orders()
    assert (order.device_id, order.severity, order.rule_id) == (
        "tank",
        "critical",
        "pump.tank_critical",
    )
    history = [(e.event, e.note or "") for e in store.history(order.id)]
    assert history[0][0] == "created"
    assert "escalated" in [e for e, _ in history]
    # every pump that saw it is on the order
    text = " ".join(note for _, note in history)
    assert all(p in text for p in ("p1", "p2", "p3")), history


def test_a_pump_outside_any_asset_keeps_its_own_fault() -> None:
    site = parse_site(SITE_TEXT.split("[[assets]]", maxsplit=1)[0])
    opened, _ = run_pack(site, draining(), 300)
    assert sorted({(f.rule_id, f.device_id) for f in opened}) == [
        (rule, pump)
        for rule in ("pump.tank_critical", "pump.tank_falling", "pump.tank_low")
        for pump in ("p1", "p2", "p3")
    ]


@pytest.mark.parametrize(
    ("asset", "message"),
    [
        ('id = "t"\ntype = "break_tank"\ndevices = ["p9"]', "lists unknown device(s) p9"),
        ('id = "t"\ntype = "break_tank"\ndevices = []', "'devices' must be a non-empty list"),
        ('id = "t"\ndevices = ["p1"]', "is missing 'type'"),
        ('id = "p1"\ntype = "x"\ndevices = ["p1"]', "duplicate id 'p1'"),
    ],
)
def test_asset_mistakes_name_the_line(asset: str, message: str) -> None:
    text = SITE_TEXT.split("[[assets]]", maxsplit=1)[0] + "[[assets]]\n" + asset + "\n"
    line = text.splitlines().index("[[assets]]") + 1
    with pytest.raises(SiteFileError) as error:
        parse_site(text, "site.toml")
    assert str(error.value).startswith(f"site.toml:{line}") or str(error.value).startswith(
        f"site.toml:{line + 1}"
    ), str(error.value)
    assert message in str(error.value)
