"""Maintenance plans: what each kind of device needs, how often, and what proves it was done.

A plan file (TOML, like the rule pack) holds `[[plans]]`:

[[plans]]
id = "elevator.alarm_test"         # unique; the scheduled orders' rule_id
kind = "elevator"                  # elevator | lighting | gate | pump
devices = "*emerg*"                # optional: an fnmatch pattern over the device's id or name
title = "EN 81-28 alarm system self-test"
title_zh = "EN 81-28 紧急报警装置自检"  # optional: the title in 中文 (reports, the dashboard)
every = "72h"                      # the interval (s, m, h, d), 1 h .. 5 years
evidence = "telemetry"             # telemetry: a reading shows it; record: a technician's
field = "alarm_test_ok"            #   telemetry: the field that reports the test ...
passed = 1                         #   ... and its value when it passed
done_codes = ["maintenance_done"]  #   record: resolution codes that complete a period
severity = "minor"                 # optional: of the scheduled orders (record plans)
enabled = true                     # optional: false turns a default plan off
description = "..."                # optional: why the plan exists

The defaults are `default_plans.toml` beside this module; an operator's file replaces a plan of
the same id, adds plans, or turns one off. Mistakes are `PlanFileError`s naming the file and line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from alerts.interface import Severity
from alerts.rule_language import parse_duration_s
from alerts.workorders import ResolutionCode
from facility.catalog import KIND_NAMES, KINDS, FieldType
from facility.errors import FileError
from facility.site import Device, Site
from facility.toml_file import TomlLines, parse_toml, read_text

DEFAULT_PLANS: Final = Path(__file__).resolve().parent / "default_plans.toml"
MIN_EVERY_S: Final = 3600.0
MAX_EVERY_S: Final = 5 * 366 * 86_400.0
_ID = re.compile(r"^[a-z0-9_.-]{1,128}$")
_KEYS: Final = frozenset(
    {"id", "kind", "devices", "title", "title_zh", "every", "evidence", "field", "passed",
     "done_codes", "severity", "enabled", "description"}
)  # fmt: skip
_REQUIRED: Final = ("id", "kind", "title", "every", "evidence")


class Evidence(StrEnum):
    TELEMETRY = "telemetry"
    """A reading of the device shows the test passing (`field` == `passed`)."""
    RECORD = "record"
    """A technician resolves the plan's scheduled order with one of its `done_codes`."""


class PlanFileError(FileError):
    """A plan file that cannot be read or is wrong: the file, the line and what."""


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    kind: str
    title: str
    every_s: float
    evidence: Evidence
    title_zh: str = ""
    """The title in 中文; empty: the English title serves both languages."""
    devices: str = "*"
    """fnmatch pattern over the device's id or name (case-insensitive)."""
    field: str | None = None
    passed: float | None = None
    done_codes: frozenset[str] = frozenset({str(ResolutionCode.MAINTENANCE_DONE)})
    severity: Severity = Severity.MINOR
    enabled: bool = True
    description: str = ""

    @property
    def every_ms(self) -> int:
        return round(self.every_s * 1000)

    def title_in(self, language: str) -> str:
        """The title in `language` (`en` or `zh`)."""
        return self.title_zh if language == "zh" and self.title_zh else self.title

    def applies_to(self, device: Device) -> bool:
        if device.kind != self.kind:
            return False
        pattern = self.devices.lower()
        return fnmatch.fnmatchcase(device.id.lower(), pattern) or fnmatch.fnmatchcase(
            device.name.lower(), pattern
        )


@dataclass(frozen=True, slots=True)
class PlanSet:
    plans: tuple[Plan, ...]
    """The enabled plans, in file order (defaults first)."""

    def by_id(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def for_device(self, device: Device) -> list[Plan]:
        return [p for p in self.plans if p.applies_to(device)]

    def pairs(
        self, site: Site, devices: Sequence[Device] | None = None
    ) -> list[tuple[Plan, Device]]:
        """Every (plan, device) the plans cover, among `devices` (default: the whole site)."""
        chosen = site.devices if devices is None else devices
        return [(p, d) for p in self.plans for d in chosen if p.applies_to(d)]


def parse_plan_file(text: str, path: Path | str = "<plans>") -> list[Plan]:
    """Every plan of the file (disabled ones too: they turn a default off)."""
    path = Path(path)
    data = parse_toml(text, path, PlanFileError)
    lines = TomlLines(text)
    unknown = sorted(set(data) - {"plans"})
    if unknown:
        raise PlanFileError(
            path, None, f"unknown top-level key(s) {', '.join(unknown)}; allowed: plans"
        )
    raw_plans = data.get("plans", [])
    if not isinstance(raw_plans, list) or not raw_plans:
        raise PlanFileError(path, None, "the file has no [[plans]]")
    plans: list[Plan] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_plans):
        plan = _plan(raw, _Where(path, lines, number))
        if plan.id in seen:
            raise _Where(path, lines, number).error("id", f"duplicate plan id {plan.id!r}")
        seen.add(plan.id)
        plans.append(plan)
    return plans


def load_plan_file(path: Path) -> list[Plan]:
    return parse_plan_file(read_text(path, PlanFileError), path)


def load_plans(override: Path | None = None) -> PlanSet:
    """The default plans, with an operator's file laid over them (same id: replaced)."""
    merged: dict[str, Plan] = {p.id: p for p in load_plan_file(DEFAULT_PLANS)}
    if override is not None:
        for plan in load_plan_file(override):
            merged[plan.id] = plan
    return PlanSet(tuple(p for p in merged.values() if p.enabled))


@dataclass(frozen=True, slots=True)
class _Where:
    """Where the n-th plan sits in its file, for errors that point at a line."""

    path: Path
    lines: TomlLines
    number: int

    def error(self, key: str | None, message: str) -> PlanFileError:
        header = self.lines.header_line("plans", self.number)
        line = header if key is None else self.lines.key_line(header, key)[0]
        return PlanFileError(self.path, line, f"plan {self.number + 1}: {message}")


def _plan(raw: Any, where: _Where) -> Plan:
    if not isinstance(raw, dict):
        raise where.error(None, "must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise where.error(
            unknown[0], f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
        )
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise where.error(None, f"missing {', '.join(missing)}")
    plan_id = _text(raw, "id", where)
    if not _ID.match(plan_id):
        raise where.error("id", f"id {plan_id!r} must be 1-128 of a-z 0-9 _ . -")
    kind = _text(raw, "kind", where)
    if kind not in KIND_NAMES:
        raise where.error("kind", f"unknown kind {kind!r}; known: {', '.join(KIND_NAMES)}")
    title = _text(raw, "title", where)
    if not title.strip() or len(title) > 200:
        raise where.error("title", "title must be 1 to 200 characters")
    title_zh = _text(raw, "title_zh", where, "")
    if "title_zh" in raw and (not title_zh.strip() or len(title_zh) > 200):
        raise where.error("title_zh", "title_zh must be 1 to 200 characters (the title in 中文)")
    every_s = parse_duration_s(raw["every"])
    if every_s is None or not MIN_EVERY_S <= every_s <= MAX_EVERY_S:
        raise where.error(
            "every", f'every {raw["every"]!r} must be a duration from "1h" to "1830d", e.g. "15d"'
        )
    try:
        evidence = Evidence(raw["evidence"])
    except ValueError:
        raise where.error(
            "evidence", f"evidence {raw['evidence']!r} must be telemetry or record"
        ) from None
    common: dict[str, Any] = {
        "id": plan_id,
        "kind": kind,
        "title": title,
        "title_zh": title_zh,
        "every_s": every_s,
        "evidence": evidence,
        "devices": _text(raw, "devices", where, "*"),
        "severity": _severity(raw, where),
        "enabled": _flag(raw, "enabled", where),
        "description": _text(raw, "description", where, ""),
    }
    if evidence is Evidence.TELEMETRY:
        return Plan(**common, **_telemetry(raw, kind, where))
    for key in ("field", "passed"):
        if key in raw:
            raise where.error(key, f"{key} is for evidence = telemetry, not record")
    return Plan(**common, done_codes=_done_codes(raw, where))


def _text(raw: Mapping[str, Any], key: str, where: _Where, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise where.error(key, f"{key} must be a string, not {value!r}")
    return value


def _flag(raw: Mapping[str, Any], key: str, where: _Where) -> bool:
    value = raw.get(key, True)
    if not isinstance(value, bool):
        raise where.error(key, f"{key} must be true or false, not {value!r}")
    return value


def _severity(raw: Mapping[str, Any], where: _Where) -> Severity:
    value = raw.get("severity", str(Severity.MINOR))
    try:
        return Severity(value)
    except ValueError:
        known = ", ".join(str(s) for s in Severity)
        raise where.error("severity", f"severity {value!r} must be one of {known}") from None


def _telemetry(raw: Mapping[str, Any], kind: str, where: _Where) -> dict[str, Any]:
    if "done_codes" in raw:
        raise where.error("done_codes", "done_codes is for evidence = record, not telemetry")
    if "field" not in raw or "passed" not in raw:
        raise where.error(None, "evidence = telemetry needs field and passed")
    spec = KINDS[kind]
    name = _text(raw, "field", where)
    if name not in spec.index:
        raise where.error(
            "field", f"{kind} has no field {name!r}; it has {', '.join(spec.field_names)}"
        )
    passed = raw["passed"]
    if isinstance(passed, bool):
        passed = int(passed)
    field_spec = spec.fields[spec.col(name)]
    if not isinstance(passed, (int, float)) or not field_spec.min <= passed <= field_spec.max:
        raise where.error(
            "passed",
            f"passed {raw['passed']!r} must be a value of {name} "
            f"({field_spec.min:g} .. {field_spec.max:g})",
        )
    if field_spec.type is not FieldType.FLOAT and passed != int(passed):
        raise where.error("passed", f"passed must be a whole number for {name}")
    return {"field": name, "passed": float(passed)}


def _done_codes(raw: Mapping[str, Any], where: _Where) -> frozenset[str]:
    codes = raw.get("done_codes", [str(ResolutionCode.MAINTENANCE_DONE)])
    known = [str(c) for c in ResolutionCode]
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise where.error("done_codes", "done_codes must be a non-empty list of resolution codes")
    wrong = [c for c in codes if c not in known]
    if wrong:
        raise where.error(
            "done_codes",
            f"unknown resolution code(s) {', '.join(wrong)}; known: {', '.join(known)}",
        )
    return frozenset(codes)
