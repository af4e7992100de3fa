"""Per-rule options (clear, repeat, schedule, cool-down, auto-resolve, kind any), the timer
(offline, one site incident), checkpoints, and rule files that get them wrong."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from alerts.engine import RuleEngine
from alerts.faults import FaultCleared, FaultOpened
from alerts.rule_faults import SITE_RULE_ID
from alerts.rule_file import RuleFileError, parse_rule_file
from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.site import parse_site

SITE = parse_site(
    """
[site]
id = "s1"
timezone = "Asia/Shanghai"

[[buildings]]
id = "plant"

[[buildings.units]]
id = "pump-room"
devices = [
  { id = "p1", kind = "pump", name = "Booster 1" },
  { id = "p2", kind = "pump", name = "Booster 2" },
]
"""
)
T0 = 1_790_000_000_000  # 2026-09-21 (a Monday) 14:13:20 UTC = 22:13:20 in Shanghai
NAN = math.nan


def ms(t_s: float) -> int:
    return T0 + round(t_s * 1000)


def temps(*rows: tuple[int, float, float]) -> Batch:
    """(device, seconds after T0, motor_temp_c)"""
    values = np.full((len(rows), len(PUMP.fields)), NAN)
    values[:, PUMP.col("motor_temp_c")] = [r[2] for r in rows]
    kb = KindBatch(
        PUMP,
        np.array([r[0] for r in rows], np.int32),
        np.array([ms(r[1]) for r in rows], np.int64),
        np.arange(len(rows), dtype=np.int64),
        values,
    )
    return Batch("s1", {"pump": kb})


def engine(rule: str, **kwargs: float) -> RuleEngine:
    text = f"""
[[rules]]
id = "r"
kind = "pump"
severity = "major"
title = "Hot {{device}} at {{motor_temp_c:.0f}} C"
{rule}
"""
    rule_set = parse_rule_file(text)
    return RuleEngine(SITE, rule_set.rules, params=rule_set.params, **kwargs)


def events(eng: RuleEngine, *batches: Batch) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    for batch in batches:
        result = eng.evaluate(batch)
        out += [
            ("open", (f.started_ms - T0) / 1000, (f.detected_ms - T0) / 1000) for f in result.opened
        ]
        out += [("clear", (c.cleared_ms - T0) / 1000, 0.0) for c in result.cleared]
    return out


def series(*values: float, device: int = 0, step_s: float = 10.0) -> Batch:
    return temps(*((device, i * step_s, v) for i, v in enumerate(values)))


def test_clear_expression_gives_hysteresis() -> None:
    eng = engine('when = "motor_temp_c > 90"\nclear = "motor_temp_c < 80"')
    got = events(eng, series(70, 95, 85, 92, 85, 79, 85, 95))
    # 85 is in the band: the fault stays open until 79, then 95 opens it again
    assert got == [("open", 10, 10), ("open", 70, 70), ("clear", 50, 0)]


def test_without_clear_the_fault_ends_when_the_condition_does() -> None:
    eng = engine('when = "motor_temp_c > 90"')
    assert events(eng, series(95, 85, 95)) == [("open", 0, 0), ("open", 20, 20), ("clear", 10, 0)]


def test_the_title_template_takes_fields_at_detection() -> None:
    eng = engine('when = "motor_temp_c > 90"')
    (fault,) = eng.evaluate(series(70, 93.4)).opened
    assert fault.title == "Hot Booster 1 at 93 C"


def test_repeat_opens_at_the_nth_episode_within_the_window() -> None:
    # episodes 10 s apart count as recurrences only with a gap below 10 s (default 30 min)
    eng = engine('when = "motor_temp_c > 90"\nrepeat = { count = 3, within = "60s" }\ngap = "5s"')
    # episodes start at 0, 20, 40 (3 within 60 s: fires), 100 (40..100: only 2 within 60 s)
    got = events(eng, series(95, 70, 95, 70, 95, 70, 70, 70, 70, 70, 95, 70))
    assert got == [("open", 40, 40), ("clear", 50, 0)]


def test_repeat_counts_episodes_across_batches() -> None:
    eng = engine('when = "motor_temp_c > 90"\nrepeat = { count = 2, within = "1h" }\ngap = "5m"')
    assert events(eng, temps((0, 0, 95), (0, 10, 70))) == []
    assert events(eng, temps((0, 600, 95))) == [("open", 600, 600)]


def test_cooldown_holds_a_new_fault_off_after_a_clear() -> None:
    eng = engine('when = "motor_temp_c > 90"\ncooldown = "60s"')
    got = events(eng, series(95, 70, 95, 95, 95, 95, 95, 95, 95, 70, 95))
    # cleared at 10 s: the episode from 20 s may open only at 70 s; cleared at 90 s, so 100 s
    # is inside the next cool-down
    assert got == [("open", 0, 0), ("open", 20, 70), ("clear", 10, 0), ("clear", 90, 0)]


def test_cooldown_carries_over_batches() -> None:
    eng = engine('when = "motor_temp_c > 90"\ncooldown = "60s"')
    events(eng, series(95, 70))
    assert events(eng, temps((0, 30, 95))) == []
    assert events(eng, temps((0, 75, 95))) == [("open", 30, 75)]


def test_schedule_opens_only_inside_its_local_hours() -> None:
    # T0 is 22:13:20 on a Monday in Shanghai; 22:00-23:00 holds it, 23:00-06:00 does not
    inside = engine('when = "motor_temp_c > 90"\nschedule = { hours = "22:00-23:00" }')
    outside = engine('when = "motor_temp_c > 90"\nschedule = { hours = "23:00-06:00" }')
    weekend = engine('when = "motor_temp_c > 90"\nschedule = { weekdays = "sat-sun" }')
    assert events(inside, series(95)) == [("open", 0, 0)]
    assert events(outside, series(95)) == []
    assert events(weekend, series(95)) == []
    # 47 minutes later it is 23:00: the outside schedule opens the episode that began at 0 s
    assert events(outside, temps((0, 47 * 60, 95))) == [("open", 0, 47 * 60)]


def test_auto_resolve_is_carried_on_the_clear() -> None:
    eng = engine('when = "motor_temp_c > 90"\nauto_resolve = true')
    cleared = eng.evaluate(series(95, 70)).cleared
    assert cleared == [FaultCleared("r", "p1", ms(10), auto_resolve=True)]


def test_kind_any_makes_one_rule_per_kind_with_one_id() -> None:
    rule_set = parse_rule_file(
        '[[rules]]\nid = "device.offline"\nkind = "any"\nwhen = "age() > heartbeat_s"\n'
        'severity = "major"\ntitle = "Offline: {device}"\n'
    )
    assert sorted(r.kind for r in rule_set.rules) == ["elevator", "gate", "lighting", "pump"]
    assert {r.id for r in rule_set.rules} == {"device.offline"}
    assert all(r.timed for r in rule_set.rules)


# -- the timer: offline and the site incident --------------------------------------------------

OFFLINE = 'when = "age() > heartbeat_s"'


def test_a_silent_device_is_offline_at_the_first_tick_past_its_heartbeat() -> None:
    eng = engine(OFFLINE)
    eng.tick(ms(0))
    for t in range(0, 200):  # p2 reports every second; p1 stops after 10 s
        rows = [(1, float(t), 50.0)] + ([(0, float(t), 50.0)] if t <= 10 else [])
        eng.evaluate(temps(*rows))
        opened = eng.tick(ms(t + 0.5)).opened
        if opened:
            break
    assert [(f.device_id, f.started_ms, f.detected_ms) for f in opened] == [
        ("p1", ms(10), ms(70.5))  # heartbeat 60 s after its last reading at 10 s
    ]
    assert eng.evaluate(temps((0, 80, 50.0))).cleared == [FaultCleared("r", "p1", ms(80))]


def test_a_whole_site_going_silent_is_one_incident() -> None:
    eng = engine(OFFLINE)
    eng.tick(ms(0))
    eng.evaluate(temps((0, 0, 50.0), (1, 0, 50.0)))
    opened: list[FaultOpened] = []
    for t in range(1, 600):
        opened += eng.tick(ms(t)).opened
    assert [(f.rule_id, f.device_id, f.started_ms) for f in opened] == [(SITE_RULE_ID, "s1", ms(0))]
    back = eng.evaluate(temps((0, 700, 50.0)))
    assert back.cleared == [FaultCleared(SITE_RULE_ID, "s1", ms(700))]
    # p2 stays silent: offline a heartbeat after the site came back, not at once
    assert eng.tick(ms(701)).opened == []
    eng.evaluate(temps((0, 730, 50.0), (0, 760, 50.0)))  # p1 goes on reporting
    late = eng.tick(ms(761)).opened
    assert [(f.rule_id, f.device_id) for f in late] == [("r", "p2")]


def test_devices_never_heard_count_their_silence_from_the_first_tick() -> None:
    eng = engine(OFFLINE)
    assert eng.tick(ms(0)).opened == []
    eng.evaluate(temps((0, 30, 50.0), (0, 55, 50.0)))
    assert eng.tick(ms(60)).opened == []
    assert [f.device_id for f in eng.tick(ms(61)).opened] == ["p2"]


# -- checkpoints ------------------------------------------------------------------------------


def test_a_restart_in_the_middle_of_a_for_keeps_the_timer(tmp_path: Path) -> None:
    rule = 'when = "motor_temp_c > 90"\nfor = "60s"'
    first = engine(rule)
    assert events(first, series(95, 95, 95)) == []  # 0..20 s
    first.save(tmp_path / "rules.npz")
    second = engine(rule)
    assert second.load(tmp_path / "rules.npz")
    assert events(second, temps((0, 50, 95))) == []
    assert events(second, temps((0, 60, 95))) == [("open", 0, 60)]
    assert events(engine(rule), temps((0, 60, 95))) == []  # without the checkpoint: too early


def test_a_checkpoint_keeps_windows_and_repeat_history(tmp_path: Path) -> None:
    rule = (
        'when = "mean(motor_temp_c, \\"1h\\") > 90"\nrepeat = { count = 2, within = "1h" }\n'
        'gap = "10s"'
    )
    first = engine(rule)
    events(first, series(100, 60, 40))  # mean 100 (episode 1), 80, 66.7
    first.save(tmp_path / "rules.npz")
    second = engine(rule)
    second.load(tmp_path / "rules.npz")
    # mean of 100, 60, 40, 200 = 100 > 90: the second episode within the hour opens
    assert events(second, temps((0, 30, 200))) == [("open", 30, 30)]


def test_a_checkpoint_keeps_what_a_last_n_window_reads_between_entries(tmp_path: Path) -> None:
    rule = 'when = "mean(motor_temp_c, 3, only=motor_temp_c > 50) > 90"'
    first = engine(rule)
    assert events(first, series(100, 100, 100)) == [("open", 0, 0)]
    first.save(tmp_path / "rules.npz")
    second = engine(rule)
    second.load(tmp_path / "rules.npz")
    # 40 is no entry: the window still reads 100, 100, 100 and the fault stays open
    assert events(second, temps((0, 30, 40))) == []
    assert events(second, temps((0, 40, 60))) == [("clear", 40, 0)]  # 100, 100, 60


def test_a_checkpoint_of_a_wider_or_narrower_ring_keeps_its_newest_entries(tmp_path: Path) -> None:
    def rule(capacity: int) -> str:
        return f'when = "count(motor_temp_c > 90, \\"1h\\", capacity={capacity}) >= 3"'

    wide = engine(rule(8))
    assert events(wide, series(95, 50, 50, 50, 95)) == []  # 0..40 s, two hot
    wide.save(tmp_path / "rules.npz")
    narrow = engine(rule(4))
    narrow.load(tmp_path / "rules.npz")  # keeps the newest four: 50, 50, 50, 95
    assert events(narrow, temps((0, 50, 95))) == []  # 50, 50, 95, 95
    assert events(narrow, temps((0, 60, 95))) == [("open", 60, 60)]  # 50, 95, 95, 95
    wider = engine(rule(16))
    wider.load(tmp_path / "rules.npz")  # keeps all five
    assert events(wider, temps((0, 50, 95))) == [("open", 50, 50)]


def test_a_checkpointed_window_is_not_loaded_into_a_window_whose_text_changed(
    tmp_path: Path,
) -> None:
    first = engine('when = "mean(motor_temp_c, 3) > 200"')
    assert events(first, series(100, 100, 100)) == []
    first.save(tmp_path / "rules.npz")
    changed = engine('when = "count(motor_temp_c > 95, 3) >= 1"')  # the same state key
    changed.load(tmp_path / "rules.npz")
    assert events(changed, temps((0, 30, 50))) == []  # not 100, 100, 50 from the old window
    same_text = engine('when = "mean(motor_temp_c, 3, capacity=8) > 90"')
    same_text.load(tmp_path / "rules.npz")
    assert events(same_text, temps((0, 30, 95))) == [("open", 30, 30)]  # 100, 100, 95


def test_no_checkpoint_and_a_broken_one(tmp_path: Path) -> None:
    eng = engine(OFFLINE)
    assert eng.load(tmp_path / "none.npz") is False
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="cannot be read"):
        eng.load(tmp_path / "bad.npz")


# -- rule files that get the options wrong ---------------------------------------------------


def rule_file(extra: str) -> str:
    return (
        '[[rules]]\nid = "r"\nkind = "pump"\nwhen = "motor_temp_c > 90"\n'
        f'severity = "major"\ntitle = "Hot"\n{extra}\n'
    )


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ('clear = "motor_temp_c <"', 7, "column 24: not a valid expression"),
        ('clear = ""', 7, "clear must be a non-empty expression"),
        ('cooldown = "soon"', 7, "'cooldown' = 'soon' is not a duration"),
        ("auto_resolve = 1", 7, "auto_resolve must be true or false"),
        ('repeat = { count = 0, within = "7d" }', 7, "repeat count 0"),
        ('repeat = { count = 3, within = "often" }', 7, "repeat within 'often'"),
        ("repeat = 3", 7, "repeat must be a table"),
        ('schedule = { hours = "25:00-26:00" }', 7, "not a time of day"),
        ('schedule = { hours = "10-15" }', 7, 'must look like "10:00-15:00"'),
        ('schedule = { weekdays = "mon-funday" }', 7, "schedule weekdays"),
        ('schedule = { months = "may" }', 7, "schedule knows hours and weekdays"),
        ('schedule = "daytime"', 7, "schedule must be a table"),
    ],
)
def test_bad_options_name_the_file_line_and_column(extra: str, line: int, message: str) -> None:
    with pytest.raises(RuleFileError) as raised:
        parse_rule_file(rule_file(extra), "rules.toml")
    text = str(raised.value)
    assert text.startswith(f"rules.toml:{line}:"), text
    assert message in text, text


def test_a_title_with_an_unknown_name_is_refused() -> None:
    with pytest.raises(RuleFileError, match="title uses colour"):
        parse_rule_file(rule_file("").replace('title = "Hot"', 'title = "Hot {colour}"'))
