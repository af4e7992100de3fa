"""Scenario files: a list of fault injections in TOML, checked like site files.

    [scenario]
    name = "Monday morning"                 # optional
    description = "A pump runs dry, a lift traps someone, the gateway gets garbage."

    [[inject]]
    fault = "pump-dry-run"                  # required: a fault name (docs/simulators.md)
    targets = ["pump-2"]                    # optional: ids, building/unit ids, "*", "10%"
    at = "10m"                              # optional: start (seconds or "90s", "5m", "2h", "1d")
    duration = "5m"                         # optional: to the end of the run without it

    [[inject]]
    fault = "bearing-wear"
    targets = "25%"
    at = 0
    duration = "3d"
    parameters = { rate_per_day = 2.0 }

Every mistake is reported as FILE:LINE: what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from facility.site import Site
from facility.toml_file import parse_toml, read_text
from simulators.errors import InjectionError, ScenarioError
from simulators.faults import DEFAULT_START_S
from simulators.injection import Injection, build_injection, parse_duration

_ENTRY_KEYS = {"fault", "targets", "at", "duration", "parameters"}
_TOP_KEYS = {"scenario", "inject"}
_SCENARIO_KEYS = {"name", "description"}


class _Lines:
    """Where the n-th [[inject]] table and its keys are, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        header = re.compile(r"^\s*\[\[\s*inject\s*\]\]")
        self.headers = [i + 1 for i, line in enumerate(self.lines) if header.match(line)]

    def entry(self, index: int) -> int | None:
        return self.headers[index] if index < len(self.headers) else None

    def key(self, index: int, key: str) -> int | None:
        first = self.entry(index)
        if first is None:
            return None
        last = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(first, last):
            if pattern.match(self.lines[number - 1]):
                return number
        return first


def parse_scenario(
    text: str, site: Site, path: Path | str = "<scenario>", *, seed: int = 0
) -> list[Injection]:
    path = Path(path)
    data = parse_toml(text, path, ScenarioError)
    lines = _Lines(text)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ScenarioError(
            path, None, f"unknown table(s) {', '.join(unknown)}; allowed: [scenario], [[inject]]"
        )
    meta = data.get("scenario", {})
    if not isinstance(meta, dict) or set(meta) - _SCENARIO_KEYS:
        raise ScenarioError(path, None, "[scenario] takes only 'name' and 'description'")
    entries = data.get("inject", [])
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(path, None, "the scenario has no [[inject]] tables")
    injections = []
    for index, entry in enumerate(entries):
        injections.append(_entry(index, entry, lines, site, path, seed))
    return injections


def _entry(index: int, entry: Any, lines: _Lines, site: Site, path: Path, seed: int) -> Injection:
    where = lines.entry(index)

    def fail(key: str | None, message: str) -> ScenarioError:
        line = lines.key(index, key) if key else where
        return ScenarioError(path, line, f"[[inject]] #{index + 1}: {message}")

    if not isinstance(entry, dict):
        raise fail(None, "must be a table")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise fail(
            unknown[0],
            f"unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_ENTRY_KEYS))}",
        )
    fault = entry.get("fault")
    if not isinstance(fault, str):
        raise fail(
            None if fault is None else "fault",
            "'fault' must name a fault, e.g. fault = \"pump-dry-run\"",
        )
    targets = entry.get("targets", [])
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise fail("targets", "'targets' must be a string or a list of strings")
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise fail(
            "parameters", "'parameters' must be a table, e.g. parameters = { severity = 0.5 }"
        )
    try:
        start = parse_duration(entry["at"], "'at'") if "at" in entry else DEFAULT_START_S
    except InjectionError as exc:
        raise fail("at", str(exc)) from None
    try:
        duration = parse_duration(entry["duration"], "'duration'") if "duration" in entry else None
    except InjectionError as exc:
        raise fail("duration", str(exc)) from None
    try:
        return build_injection(
            fault,
            site,
            targets=targets,
            start_s=start,
            duration_s=duration,
            parameters=parameters,
            seed=seed,
            label=f"{path.name}#{index + 1}:{fault}",
        )
    except InjectionError as exc:
        key = _key_of(str(exc), entry)
        raise fail(key, str(exc)) from None


def _key_of(message: str, entry: dict[str, Any]) -> str | None:
    """The key of an entry an injection error is about (for its line number)."""
    if "unknown fault" in message:
        return "fault"
    if "duration" in message:
        return "duration"
    about_parameters = any(
        word in message for word in ("parameter", "must be a number", "signal", "kind(s)", "count")
    )
    if about_parameters and "parameters" in entry:
        return "parameters"
    return "targets" if "targets" in entry else None


def load_scenario(path: Path | str, site: Site, *, seed: int = 0) -> list[Injection]:
    path = Path(path)
    text = read_text(path, ScenarioError)
    return parse_scenario(text, site, path, seed=seed)
