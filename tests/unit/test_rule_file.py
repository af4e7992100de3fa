"""Rule files: the default pack loads; mistakes are named with file, line and column; site
files override parameters down the tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alerts.engine import RuleEngine
from alerts.rule_file import RuleFileError, load_rule_file, parse_rule_file
from alerts.rules import DEFAULT_RULE_FILE, default_rule_set
from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.errors import FacilityError, SiteFileError
from facility.site import parse_site

GOOD = """\
[params]
floor_bar = 0.2

[[rules]]
id = "pump.low_suction"
kind = "pump"
when = "running and suction_bar < floor_bar"
for = "2s"
severity = "major"
title = "Low suction: {device} in {building}"
"""


def test_the_default_pack_loads_every_rule() -> None:
    pack = default_rule_set()
    assert {
        "pump.dry_run", "elevator.entrapment", "gate.forced_open", "lighting.circuit_dark",
        "device.offline", "sensor.flat_line.pump", "sensor.wire_cut.lighting",
    } <= {r.id for r in pack.rules}  # fmt: skip
    assert load_rule_file(DEFAULT_RULE_FILE).params == pack.params
    dry_run = next(r for r in pack.rules if r.id == "pump.dry_run")
    assert dry_run.for_s == 30.0
    assert dry_run.params == frozenset({"dry_run_suction_bar", "dry_run_current_share"})
    assert {r.kind for r in pack.rules if r.id == "device.offline"} == {
        "elevator", "lighting", "gate", "pump",
    }  # fmt: skip


def test_a_good_file() -> None:
    pack = parse_rule_file(GOOD)
    (rule,) = pack.rules
    assert (rule.kind, rule.severity, rule.for_s) == ("pump", "major", 2.0)
    assert pack.params == {"floor_bar": 0.2}


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('for = "2s"', 'for = "soon"'), 8, "not a duration"),
        (('severity = "major"', 'severity = "urgent"'), 9, "severity 'urgent'"),
        (('kind = "pump"', 'kind = "boiler"'), 6, "unknown kind 'boiler'"),
        (
            ('title = "Low suction: {device} in {building}"', 'title = "{owner}"'),
            10,
            "title uses owner",
        ),
        (('when = "running and', 'when = "runing and'), 7, "column 9: unknown name 'runing'"),
        (
            ("suction_bar < floor_bar", "suction_bar < lowest"),
            7,
            "column 35: unknown name 'lowest'",
        ),
        (
            ('when = "running and suction_bar < floor_bar"', 'when = "suction_bar <"'),
            7,
            "column 22: not a valid",
        ),
        (("floor_bar = 0.2", 'floor_bar = "low"'), 2, "parameter 'floor_bar' must be a number"),
        (('id = "pump.low_suction"', 'id = "Pump Low"'), 5, "may use a-z"),
        (('severity = "major"', 'severity = "major"\ncolour = "red"'), 4, "unknown key(s) colour"),
        (('id = "pump.low_suction"', "id = 5"), 5, "needs 'id'"),
        (("floor_bar = 0.2", "floor_bar = 0.2\nrunning = 1"), None, "name of a device field"),
        (('for = "2s"', "for = -3"), 8, "not a duration"),
        (('kind = "pump"', 'kind = "pump"\n'), None, None),
        (
            ('for = "2s"', 'for = "2s"\nclear = "mean(suction_bar, 5) > 1 and age() < 60"'),
            9,
            "age() is evaluated on the timer",
        ),
        (
            (
                'when = "running and suction_bar < floor_bar"\nfor = "2s"',
                'when = "age() > 60"\nfor = "2s"\nclear = "mean(suction_bar, 5) > 1"',
            ),
            9,
            "its when, clear and hold may not use window functions",
        ),
    ],
)
def test_mistakes_name_the_line_and_what_is_wrong(
    change: tuple[str, str], line: int | None, message: str | None
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD or message is None
    if message is None:
        parse_rule_file(text)
        return
    with pytest.raises(RuleFileError) as raised:
        parse_rule_file(text, "rules.toml")
    assert message in str(raised.value)
    assert raised.value.line == line


def test_duplicate_ids_and_empty_files() -> None:
    twice = GOOD + GOOD.split("\n", 3)[3].replace("[[rules]]", "\n[[rules]]", 1)
    with pytest.raises(RuleFileError, match=r"duplicate rule id 'pump\.low_suction'") as raised:
        parse_rule_file(twice)
    assert raised.value.line == 13
    with pytest.raises(RuleFileError, match="no \\[\\[rules\\]\\]"):
        parse_rule_file("[params]\nx = 1\n")
    with pytest.raises(RuleFileError, match="not valid TOML"):
        parse_rule_file("[[rules]\n")
    with pytest.raises(RuleFileError, match="no such file"):
        load_rule_file(Path("/nonexistent/rules.toml"))


SITE = """\
[site]
id = "s"
params = { floor_bar = 0.5 }

[[buildings]]
id = "b1"
params = { floor_bar = 0.4 }

[[buildings.units]]
id = "u1"
devices = [
  { id = "p1", kind = "pump" },
  { id = "p2", kind = "pump", params = { floor_bar = 0.1 } },
]

[[buildings]]
id = "b2"

[[buildings.units]]
id = "u2"
params = { floor_bar = 0.3 }
devices = [{ id = "p3", kind = "pump" }, { id = "p4", kind = "pump", params = {} }]
"""


def test_site_parameters_are_inherited_down_the_tree() -> None:
    site = parse_site(SITE)
    assert [site.by_id[d].params["floor_bar"] for d in ("p1", "p2", "p3", "p4")] == [
        0.4,
        0.1,
        0.3,
        0.3,
    ]
    pack = parse_rule_file(GOOD.replace('for = "2s"', 'for = "0s"'))
    engine = RuleEngine.from_rule_set(site, pack)
    values = np.full((4, len(PUMP.fields)), np.nan)
    values[:, PUMP.col("running")] = 1
    values[:, PUMP.col("suction_bar")] = 0.35
    kb = KindBatch(PUMP, np.arange(4, dtype=np.int32), np.full(4, 1000, np.int64),
                   np.ones(4, np.int64), values)  # fmt: skip
    opened = engine.evaluate(Batch("s", {"pump": kb})).opened
    assert sorted(f.device_id for f in opened) == ["p1"]  # 0.35 < 0.4; not < 0.1, 0.3, 0.3


def test_a_site_parameter_no_rule_declares_is_refused() -> None:
    site = parse_site(SITE.replace("floor_bar = 0.1", "flor_bar = 0.1"))
    with pytest.raises(FacilityError, match="flor_bar"):
        RuleEngine.from_rule_set(site, parse_rule_file(GOOD))


def test_a_site_parameter_must_be_a_number() -> None:
    with pytest.raises(SiteFileError, match="parameter 'floor_bar' must be a number") as raised:
        parse_site(SITE.replace("floor_bar = 0.1", 'floor_bar = "low"'))
    assert raised.value.line == 13
