"""Rule files: rules and their parameters in TOML, checked with file / line / column errors.

[params]                        # defaults; a site file may override any of them per site,
dry_run_suction_bar = 0.2       # building, unit or device (`params = { ... }`)

[[rules]]
id = "pump.dry_run"
kind = "pump"
when = "running and suction_bar < dry_run_suction_bar"
for = "30s"                     # optional: how long `when` must hold (s, m, h; default 0)
severity = "critical"           # critical | major | minor | warning
category = "equipment"          # optional: equipment (default) | sensor
title = "Pump dry run: {device}"   # {device} {device_id} {building} {unit}
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

from alerts.interface import Category, Rule, Severity
from alerts.rule_language import RuleSyntaxError, compile_expression
from facility.catalog import KIND_NAMES, KINDS
from facility.errors import FileError
from facility.toml_file import parse_toml, read_text

TITLE_FIELDS = frozenset({"device", "device_id", "building", "unit"})
_RULE_KEYS = {"id", "kind", "when", "for", "severity", "category", "title", "description"}
_REQUIRED = ("id", "kind", "when", "severity", "title")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ID = re.compile(r"^[a-z0-9_.-]{1,128}$")


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


class _Source:
    """Lines of the file, to point errors at the right place."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def rule_line(self, number: int) -> int | None:
        seen = -1
        for index, line in enumerate(self.lines, start=1):
            if re.match(r"^\s*\[\[\s*rules\s*\]\]", line):
                seen += 1
                if seen == number:
                    return index
        return None

    def key_line(self, start: int | None, key: str) -> tuple[int | None, int]:
        """Line of `key = ...` at or after `start` and the column where its value begins."""
        if start is None:
            return None, 0
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=\s*")
        for index in range(start, len(self.lines) + 1):
            match = pattern.match(self.lines[index - 1])
            if match:
                return index, match.end() + 1
            if index > start and self.lines[index - 1].lstrip().startswith("[["):
                break
        return start, 0


def parse_duration_s(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match[1]) * _UNIT_S[match[2]]
    return None


def _check_title(title: str) -> str | None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(title) if name is not None}
    except ValueError as exc:
        return f"title is not a valid template: {exc}"
    unknown = names - TITLE_FIELDS
    if unknown:
        return (
            f"title uses {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(TITLE_FIELDS))}"
        )
    return None


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
    for number, raw in enumerate(raw_rules):
        rule = _rule(number, raw, params, path, source)
        if rule.id in seen:
            raise RuleFileError(path, source.key_line(source.rule_line(number), "id")[0],
                                f"duplicate rule id {rule.id!r}")  # fmt: skip
        seen.add(rule.id)
        rules.append(rule)
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


def _rule(number: int, raw: Any, params: Mapping[str, float], path: Path, source: _Source) -> Rule:
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
    if kind not in KINDS:
        raise fail("kind", f"unknown kind {kind!r}; known: {', '.join(KIND_NAMES)}")
    try:
        severity = Severity(raw["severity"])
    except ValueError:
        raise fail(
            "severity",
            f"severity {raw['severity']!r} is not one of {', '.join(s.value for s in Severity)}",
        ) from None
    try:
        category = Category(raw.get("category", "equipment"))
    except ValueError:
        raise fail("category", f"category {raw['category']!r} is not equipment or sensor") from None
    for_s = parse_duration_s(raw.get("for", 0))
    if for_s is None:
        raise fail("for", f'\'for\' = {raw["for"]!r} is not a duration like 30, "30s", "10m", "2h"')
    problem = _check_title(raw["title"])
    if problem:
        raise fail("title", problem)
    try:
        expression = compile_expression(raw["when"], KINDS[kind], frozenset(params))
    except RuleSyntaxError as exc:
        line, value_column = source.key_line(header, "when")
        quote = (
            1
            if value_column
            and line
            and source.lines[line - 1][value_column - 1 : value_column] in "\"'"
            else 0
        )
        raise RuleFileError(path, line, exc.message, value_column + quote + exc.column - 1) from exc
    return Rule(
        id=rule_id,
        kind=kind,
        severity=severity,
        title=raw["title"],
        condition=expression,
        for_s=for_s,
        category=category,
        description=str(raw.get("description", "")),
        params=expression.params,
        temporal=expression.temporal,
    )


def load_rule_file(path: Path | str) -> RuleSet:
    path = Path(path)
    text = read_text(path, RuleFileError)
    return parse_rule_file(text, path)
