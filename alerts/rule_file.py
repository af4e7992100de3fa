"""Rule files: rules and their parameters in TOML, checked with file / line / column errors.

[params]                        # defaults; a site file may override any of them per site,
dry_run_suction_bar = 0.2       # building, unit or device (`params = { ... }`)

[[rules]]
id = "pump.dry_run"
kind = "pump"                   # a kind, or "any" (one rule per kind, same id)
when = "running and suction_bar < dry_run_suction_bar"
for = "30s"                     # optional: how long `when` must hold (s, m, h, d; default 0)
clear = "suction_bar > 0.4"     # optional: what ends the fault (default: `when` is false)
hold = "not running"            # optional: what keeps an episode going once `when` started it
clear_for = "30s"               # optional: a clear must hold this long before the fault clears
gap = "30m"                     # optional: episodes closer than this are one event (recurrence)
family = "dry_run"              # optional: rules of one family share one open work order
asset = "break_tank"            # optional: faults of the shared asset of this type a device sees
title_values = { minutes_left = "(100 - motor_temp_c) / slope(motor_temp_c, \"20m\") / 60" }
                                # optional: numbers at detection for the title ({minutes_left})
repeat = { count = 3, within = "7d" }   # optional: open at the 3rd episode within 7 days
schedule = { hours = "10:00-15:00", weekdays = "mon-fri" }  # optional, site-local time
cooldown = "10m"                # optional: after a clear, no new fault for this long
auto_resolve = false            # optional: a clear resolves the work order
severity = "critical"           # critical | major | minor | warning
category = "equipment"          # optional: equipment (default) | sensor
title = "Pump dry run: {device}"   # {device} {device_id} {building} {unit} and the kind's
                                   # fields at detection, e.g. {motor_temp_c:.0f}
title_zh = "水泵干转 {device}"      # optional: the title in 中文 (the same placeholders)
description = "..."             # optional: why the rule exists, shown in docs
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alerts.interface import DEFAULT_GAP_S, Category, Repeat, Rule, Schedule, Severity
from alerts.rule_compiler import Expression, compile_expression
from alerts.rule_language import RuleSyntaxError, parse_duration_s
from alerts.rule_windows import WindowSpec
from facility.catalog import KIND_NAMES, KINDS, KindSpec
from facility.errors import FileError
from facility.toml_file import TomlLines, parse_toml, read_text

__all__ = ["RuleFileError", "RuleSet", "load_rule_file", "parse_duration_s", "parse_rule_file"]

ANY_KIND = "any"
TITLE_FIELDS = frozenset({"device", "device_id", "building", "unit"})
_RULE_KEYS = {
    "id", "kind", "when", "for", "severity", "category", "title", "description",
    "clear", "repeat", "schedule", "cooldown", "auto_resolve", "hold", "clear_for", "gap",
    "family", "asset", "title_values", "title_zh",
}  # fmt: skip
_REQUIRED = ("id", "kind", "when", "severity", "title")
_ID = re.compile(r"^[a-z0-9_.-]{1,128}$")
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RuleFileError(FileError):
    def __init__(
        self, path: Path | str, line: int | None, message: str, column: int | None = None
    ) -> None:
        self.column = column
        super().__init__(path, line, message if column is None else f"column {column}: {message}")


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    params: Mapping[str, float]
    """Parameter defaults; sites override them per node."""


class _Source(TomlLines):
    """Lines of the rule file, to point errors at the right place."""

    def rule_line(self, number: int) -> int | None:
        return self.header_line("rules", number)


def _check_title(
    title: str, kinds: list[KindSpec], extra: frozenset[str] = frozenset()
) -> str | None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(title) if name is not None}
    except ValueError as exc:
        return f"title is not a valid template: {exc}"
    shared = set.intersection(*(set(spec.field_names) for spec in kinds))
    allowed = TITLE_FIELDS | shared | extra
    unknown = names - allowed
    if unknown:
        return (
            f"title uses {', '.join(sorted(unknown))}; allowed: {{device}}, {{device_id}}, "
            "{building}, {unit} and the kind's fields"
        )
    return None


def _schedule(raw: Any) -> Schedule | str:
    """A schedule, or why it is wrong."""
    if not isinstance(raw, dict):
        return 'schedule must be a table, e.g. { hours = "10:00-15:00", weekdays = "mon-fri" }'
    unknown = sorted(set(raw) - {"hours", "weekdays"})
    if unknown:
        return f"schedule knows hours and weekdays, not {', '.join(unknown)}"
    minutes: list[tuple[int, int]] = []
    hours = raw.get("hours", [])
    for text in [hours] if isinstance(hours, str) else hours if isinstance(hours, list) else [0]:
        match = _CLOCK.match(text) if isinstance(text, str) else None
        if not match:
            return f'schedule hours {text!r} must look like "10:00-15:00"'
        h1, m1, h2, m2 = (int(x) for x in match.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or h1 * 60 + m1 > 1440 or h2 * 60 + m2 > 1440:
            return f"schedule hours {text!r} is not a time of day"
        if (h1 * 60 + m1) == (h2 * 60 + m2):
            return f"schedule hours {text!r} is empty"
        minutes.append((h1 * 60 + m1, h2 * 60 + m2))
    days = raw.get("weekdays", "mon-sun")
    chosen: set[int] = set()
    parts = days.split(",") if isinstance(days, str) else days if isinstance(days, list) else [0]
    for part in parts:
        if not isinstance(part, str):
            return f'schedule weekdays {days!r} must be names like "mon-fri" or "sat,sun"'
        ends = [p.strip().lower()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            return f"schedule weekdays {part!r}: use mon, tue, wed, thu, fri, sat, sun (or a-b)"
        a, b = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        chosen.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not chosen:
        return "schedule has no weekday"
    return Schedule(tuple(minutes), frozenset(chosen))


def _repeat(raw: Any) -> Repeat | str:
    if not isinstance(raw, dict) or set(raw) != {"count", "within"}:
        return 'repeat must be a table { count = N, within = "7d" }'
    count = raw["count"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        return f"repeat count {count!r} must be a whole number 1..1000"
    within = parse_duration_s(raw["within"])
    if within is None or within <= 0:
        return f'repeat within {raw["within"]!r} is not a duration like "7d"'
    return Repeat(count, within)


def parse_rule_file(text: str, path: Path | str = "<rules>") -> RuleSet:
    path = Path(path)
    data = parse_toml(text, path, RuleFileError)
    source = _Source(text)
    unknown = sorted(set(data) - {"params", "rules"})
    if unknown:
        raise RuleFileError(
            path, None, f"unknown top-level key(s) {', '.join(unknown)}; allowed: params, rules"
        )
    params = _params(data.get("params", {}), path, source)
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleFileError(path, None, "the file has no [[rules]]")
    rules: list[Rule] = []
    seen: set[str] = set()
    family_kind: dict[str, str] = {}
    for number, raw in enumerate(raw_rules):
        expanded = _rule(number, raw, params, path, source)
        if expanded[0].id in seen:
            raise RuleFileError(path, source.key_line(source.rule_line(number), "id")[0],
                                f"duplicate rule id {expanded[0].id!r}")  # fmt: skip
        seen.add(expanded[0].id)
        family = expanded[0].family
        if family:
            kind = raw["kind"]
            if family_kind.setdefault(family, kind) != kind or kind == ANY_KIND:
                raise RuleFileError(
                    path, source.key_line(source.rule_line(number), "family")[0],
                    f"family {family!r} mixes kinds: its rules must all be of one kind "
                    "(one device's faults share an order)",
                )  # fmt: skip
        rules.extend(expanded)
    return RuleSet(tuple(rules), MappingProxyType(params))


def _params(raw: Any, path: Path, source: _Source) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise RuleFileError(path, None, "[params] must be a table of name = number")
    params: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            line = next(
                (i for i, t in enumerate(source.lines, 1) if t.strip().startswith(f"{name} ")), None
            )
            raise RuleFileError(path, line, f"parameter {name!r} must be a number, got {value!r}")
        if name in KINDS[KIND_NAMES[0]].index or any(name in k.index for k in KINDS.values()):
            raise RuleFileError(path, None, f"parameter {name!r} has the name of a device field")
        params[name] = float(value)
    return params


def _rule(
    number: int, raw: Any, params: Mapping[str, float], path: Path, source: _Source
) -> list[Rule]:
    header = source.rule_line(number)
    if not isinstance(raw, dict):
        raise RuleFileError(path, header, "a rule must be a table")

    def fail(key: str | None, message: str, column: int | None = None) -> RuleFileError:
        line = source.key_line(header, key)[0] if key else header
        return RuleFileError(path, line, message, column)

    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise fail(
            None, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_RULE_KEYS))}"
        )
    for key in _REQUIRED:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise fail(
                key if key in raw else None,
                f"rule #{number + 1} needs {key!r} (a non-empty string)",
            )
    rule_id = raw["id"]
    if not _ID.match(rule_id):
        raise fail("id", f"rule id {rule_id!r} may use a-z, 0-9, '.', '_', '-' only")
    kind = raw["kind"]
    if kind != ANY_KIND and kind not in KINDS:
        raise fail("kind", f"unknown kind {kind!r}; known: {', '.join(KIND_NAMES)} or any")
    kinds = list(KINDS.values()) if kind == ANY_KIND else [KINDS[kind]]
    try:
        severity = Severity(raw["severity"])
    except ValueError:
        raise fail(
            "severity",
            f"severity {raw['severity']!r} is not one of {', '.join(s.value for s in Severity)}",
        ) from None
    category_text = raw.get("category", "equipment")
    if category_text not in (Category.EQUIPMENT, Category.SENSOR):
        raise fail("category", f"category {category_text!r} is not equipment or sensor")
    category = Category(category_text)
    durations: dict[str, float] = {}
    for key in ("for", "cooldown", "clear_for", "gap"):
        value = parse_duration_s(raw.get(key, DEFAULT_GAP_S if key == "gap" else 0))
        if value is None or value < 0:
            raise fail(key, f'{key!r} = {raw[key]!r} is not a duration like 30, "30s", "10m", "2h"')
        durations[key] = value
    auto_resolve = raw.get("auto_resolve", False)
    if not isinstance(auto_resolve, bool):
        raise fail("auto_resolve", f"auto_resolve must be true or false, not {auto_resolve!r}")
    schedule = Schedule()
    if "schedule" in raw:
        parsed = _schedule(raw["schedule"])
        if isinstance(parsed, str):
            raise fail("schedule", parsed, source.key_line(header, "schedule")[1] or None)
        schedule = parsed
    repeat = None
    if "repeat" in raw:
        parsed_repeat = _repeat(raw["repeat"])
        if isinstance(parsed_repeat, str):
            raise fail("repeat", parsed_repeat, source.key_line(header, "repeat")[1] or None)
        repeat = parsed_repeat
    family = raw.get("family", "")
    if not isinstance(family, str) or (family and not _ID.match(family)):
        raise fail("family", f"family {family!r} must be a name of a-z, 0-9, '.', '_', '-'")
    asset = raw.get("asset", "")
    if not isinstance(asset, str) or (asset and not _ID.match(asset)):
        raise fail("asset", f'asset {asset!r} must be an asset type like "break_tank"')
    for key in ("clear", "hold"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise fail(key, f"{key} must be a non-empty expression")
    title_values = raw.get("title_values", {})
    if not isinstance(title_values, dict) or not all(
        isinstance(v, str) and v.strip() for v in title_values.values()
    ):
        raise fail("title_values", 'title_values must be a table of name = "expression"')
    for name in title_values:
        if (
            not re.match(r"^[a-z_][a-z0-9_]{0,63}$", name)
            or any(name in spec.index for spec in kinds)
            or name in params
            or name in TITLE_FIELDS
        ):
            raise fail(
                "title_values",
                f"title value name {name!r} must be a new lower-case name (not a field or a "
                "parameter)",
            )
    problem = _check_title(raw["title"], kinds, frozenset(title_values))
    if problem:
        raise fail("title", problem)
    title_zh = raw.get("title_zh", "")
    if not isinstance(title_zh, str) or ("title_zh" in raw and not title_zh.strip()):
        raise fail("title_zh", "title_zh must be a non-empty string (the title in 中文)")
    problem = _check_title(title_zh, kinds, frozenset(title_values))
    if problem:
        raise fail("title_zh", problem.replace("title", "title_zh", 1))

    def compile_at(key: str, spec: KindSpec, windows: dict[str, WindowSpec]) -> Expression:
        try:
            return compile_expression(
                raw[key], spec, frozenset(params), prefix=f"{key}.", windows=windows
            )
        except RuleSyntaxError as exc:
            line, value_column = source.key_line(header, key)
            quote = (
                1
                if value_column
                and line
                and source.lines[line - 1][value_column - 1 : value_column] in "\"'"
                else 0
            )
            message = exc.message if kind != ANY_KIND else f"{exc.message} (for {spec.name})"
            raise RuleFileError(path, line, message, value_column + quote + exc.column - 1) from exc

    rules = []
    for spec in kinds:
        windows: dict[str, WindowSpec] = {}  # the rule's windows, shared by its expressions
        when = compile_at("when", spec, windows)
        clear = compile_at("clear", spec, windows) if "clear" in raw else None
        hold = compile_at("hold", spec, windows) if "hold" in raw else None
        values: list[tuple[str, Expression]] = []
        for name, text in title_values.items():
            try:
                values.append(
                    (
                        name,
                        compile_expression(
                            text, spec, frozenset(params), prefix=f"t.{name}.", windows=windows
                        ),
                    )
                )
            except RuleSyntaxError as exc:
                raise fail("title_values", f"title value {name!r}: {exc.message}") from exc
        parts = [p for p in (when, clear, hold, *(v for _, v in values)) if p is not None]
        if any(p.uses_age for p in parts) and any(p.windows or p.temporal for p in parts):
            raise fail(
                "clear",
                "a rule that reads age() is evaluated on the timer: its when, clear and hold "
                "may not use window functions or delta / rate",
            )
        if hold is not None and any(p.uses_age for p in parts):
            raise fail("hold", "hold cannot be used in a rule that reads age() (the timer)")
        rules.append(
            Rule(
                id=rule_id,
                kind=spec.name,
                severity=severity,
                title=raw["title"],
                title_zh=title_zh,
                condition=when,
                for_s=durations["for"],
                category=category,
                description=str(raw.get("description", "")),
                params=frozenset().union(*(p.params for p in parts)),
                temporal=any(p.temporal for p in parts),
                clear=clear,
                repeat=repeat,
                schedule=schedule,
                auto_resolve=auto_resolve,
                cooldown_s=durations["cooldown"],
                windows=tuple(dict.fromkeys(w for p in parts for w in p.windows)),
                timed=any(p.uses_age for p in parts),
                hold=hold,
                clear_for_s=durations["clear_for"],
                gap_s=durations["gap"],
                family=family,
                asset=asset,
                title_values=tuple((name, v.number) for name, v in values),
            )
        )
    return rules


def load_rule_file(path: Path | str) -> RuleSet:
    path = Path(path)
    text = read_text(path, RuleFileError)
    return parse_rule_file(text, path)
