"""Maintenance plan files: the defaults, an operator's file laid over them, and bad files
refused with the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.maintenance.plans import Evidence, PlanFileError, load_plans, parse_plan_file
from alerts.maintenance.schedule import ComplianceStatus, first_due_ms, next_due_ms, status_at
from facility.site import Site
from runtime.cli import main
from tests.services import free_port

DAY_S = 86_400
GOOD = """\
[[plans]]
id = "pump.visit"
kind = "pump"
title = "Pump visit"
every = "7d"
evidence = "record"
"""


def test_the_default_plans_have_the_issues_intervals() -> None:
    plans = {p.id: p for p in load_plans().plans}

    assert plans["elevator.maintenance"].every_s == 15 * DAY_S
    assert plans["elevator.maintenance"].evidence is Evidence.RECORD
    alarm = plans["elevator.alarm_test"]
    assert (alarm.every_s, alarm.evidence, alarm.field, alarm.passed) == (
        72 * 3600,
        Evidence.TELEMETRY,
        "alarm_test_ok",
        1.0,
    )
    assert plans["lighting.emergency_function"].every_s == 30 * DAY_S
    assert plans["lighting.emergency_duration"].every_s == 365 * DAY_S
    assert plans["pump.maintenance"].every_s == 30 * DAY_S
    assert alarm.title_in("en") == "EN 81-28 alarm system self-test"
    assert alarm.title_in("zh") == "EN 81-28 紧急报警装置自检"
    assert all(p.title_zh for p in plans.values())


def test_a_plan_without_a_chinese_title_shows_its_english_one_in_both() -> None:
    (plan,) = parse_plan_file(GOOD)
    assert (plan.title_zh, plan.title_in("zh")) == ("", "Pump visit")
    (named,) = parse_plan_file(GOOD + 'title_zh = "水泵巡检"\n')
    assert (named.title_in("zh"), named.title_in("en")) == ("水泵巡检", "Pump visit")


def test_emergency_lighting_plans_cover_only_the_emergency_groups(demo_site: Site) -> None:
    plans = load_plans()
    covered = {d.id for p, d in plans.pairs(demo_site) if p.id == "lighting.emergency_function"}

    assert covered
    assert all("emerg" in d for d in covered)
    stairwells = [d for d in demo_site.devices if d.kind == "lighting" and "emerg" not in d.id]
    assert stairwells
    assert not covered & {d.id for d in stairwells}


def test_an_override_replaces_adds_and_turns_plans_off(tmp_path: Path) -> None:
    override = tmp_path / "plans.toml"
    override.write_text(
        GOOD
        + """
[[plans]]
id = "elevator.maintenance"
kind = "elevator"
title = "Lift visit, weekly here"
every = "7d"
evidence = "record"

[[plans]]
id = "lighting.emergency_duration"
kind = "lighting"
title = "off"
every = "365d"
evidence = "record"
enabled = false
"""
    )

    plans = {p.id: p for p in load_plans(override).plans}

    assert plans["pump.visit"].every_s == 7 * DAY_S
    assert plans["elevator.maintenance"].title == "Lift visit, weekly here"
    assert "lighting.emergency_duration" not in plans
    assert "elevator.alarm_test" in plans


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("[[plans]\n", 1, "not valid TOML"),
        ("[other]\nx = 1\n", None, "unknown top-level key(s) other"),
        ("", None, "no [[plans]]"),
        (GOOD.replace('every = "7d"', 'every = "soon"'), 5, 'must be a duration from "1h"'),
        (GOOD.replace('every = "7d"', 'every = "10m"'), 5, "must be a duration"),
        (GOOD.replace('kind = "pump"', 'kind = "escalator"'), 3, "unknown kind 'escalator'"),
        (GOOD.replace('evidence = "record"', 'evidence = "hope"'), 6, "telemetry or record"),
        (GOOD + "colour = 1\n", 7, "unknown key(s) colour"),
        (GOOD.replace('id = "pump.visit"\n', ""), 1, "missing id"),
        (GOOD.replace('"pump.visit"', '"Pump Visit!"'), 2, "must be 1-128 of a-z"),
        (GOOD + 'done_codes = ["fixed_it"]\n', 7, "unknown resolution code(s) fixed_it"),
        (GOOD + "done_codes = []\n", 7, "non-empty list"),
        (GOOD + 'field = "running"\n', 7, "field is for evidence = telemetry"),
        (GOOD + 'severity = "urgent"\n', 7, "severity 'urgent' must be one of"),
        (GOOD + "enabled = 1\n", 7, "enabled must be true or false"),
        (GOOD + 'title_zh = " "\n', 7, "title_zh must be 1 to 200 characters"),
        (GOOD + "title_zh = 3\n", 7, "title_zh must be a string"),
        (GOOD + "\n" + GOOD, 9, "duplicate plan id 'pump.visit'"),
        (
            GOOD.replace('"record"', '"telemetry"') + "passed = 1\n",
            1,
            "needs field and passed",
        ),
        (
            GOOD.replace('"record"', '"telemetry"') + 'field = "tank_level"\npassed = 1\n',
            7,
            "pump has no field 'tank_level'",
        ),
        (
            GOOD.replace('"record"', '"telemetry"') + 'field = "leak"\npassed = 2\n',
            8,
            "passed 2 must be a value of leak (0 .. 1)",
        ),
        (
            GOOD.replace('"record"', '"telemetry"')
            + 'field = "leak"\npassed = 0\ndone_codes = ["repaired"]\n',
            9,
            "done_codes is for evidence = record",
        ),
    ],
)
def test_a_bad_plan_file_names_its_line_and_mistake(
    tmp_path: Path, text: str, line: int | None, says: str
) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(text)

    with pytest.raises(PlanFileError) as caught:
        load_plans(path)

    assert caught.value.line == line
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_a_missing_plan_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="no such file"):
        load_plans(tmp_path / "nowhere.toml")


def test_due_times_roll_from_the_last_done_and_spread_the_first_visits() -> None:
    (plan,) = parse_plan_file(GOOD)
    week = 7 * 86_400_000

    firsts = {first_due_ms(plan, f"p{i}", 0) for i in range(20)}
    assert all(0 <= f < week for f in firsts)
    assert len(firsts) > 10
    assert next_due_ms(plan, "p1", last_done_ms=5_000, since_ms=0) == 5_000 + week
    assert status_at(week, week + 1, 0, ever_done=True) is ComplianceStatus.OVERDUE
    assert status_at(week, week - 10, 100, ever_done=True) is ComplianceStatus.DUE
    assert status_at(week, week - 1000, 100, ever_done=True) is ComplianceStatus.DONE
    assert status_at(week, 0, 100, ever_done=False) is ComplianceStatus.DUE


def test_a_bad_plan_file_stops_facility_api_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "plans.toml"
    bad.write_text(GOOD + 'done_codes = ["fixed_it"]\n')
    args = ["api", "--db-url", f"sqlite:///{tmp_path / 'db.sqlite3'}", "--port", str(free_port())]
    args += ["--api-secret", "s" * 40, "--maintenance-plans", str(bad)]

    assert main(args) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"facility: error: {bad}:7: plan 1: unknown resolution code(s) fixed_it")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("flags", "env", "says"),
    [
        (["--maintenance-lead-s", "-1"], {}, "maintenance.lead_s: must not be negative"),
        (["--maintenance-lead-s", "soon"], {}, "'soon' is not a number"),
        (["--maintenance-interval-s", "0"], {}, "maintenance.interval_s: must be more than 0"),
        ([], {"FACILITY_MAINTENANCE_SCHEDULER": "perhaps"}, "FACILITY_MAINTENANCE_SCHEDULER"),
        ([], {"FACILITY_MAINTENANCE_PLANS": "/nowhere/plans.toml"}, "no such file"),
    ],
)
def test_bad_maintenance_settings_stop_facility_api_naming_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    env: dict[str, str],
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["api", "--db-url", f"sqlite:///{tmp_path / 'db.sqlite3'}", "--port", str(free_port())]

    try:
        code = main([*args, *flags])
    except SystemExit as exc:  # argparse refuses a value of the wrong type itself
        code = int(exc.code or 0)

    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert says in err
