"""Reading the systemd units of deploy/systemd the way systemd does, for the tests that check
them: sections, repeated keys (each kept, in order), `\\` line continuations, `#`/`;` comments,
and the `%i` / `%%` specifiers of an instance."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


class UnitFileError(ValueError):
    """A line systemd would not accept as a section header or `Key=value`."""


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]]

    def values(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, section: str, key: str) -> str:
        found = self.values(section, key)
        if len(found) != 1:
            raise KeyError(f"{self.name}: [{section}] {key} is set {len(found)} times, not once")
        return found[0]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped[0] in "#;"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        raise UnitFileError("the file ends inside a continued line")
    return lines


def expand(text: str, instance: str | None) -> str:
    """`%i` is the instance name, `%%` a percent sign; no other specifier is used by ours."""
    out = []
    chars = iter(text)
    for char in chars:
        if char != "%":
            out.append(char)
            continue
        spec = next(chars, "")
        if spec == "%":
            out.append("%")
        elif spec == "i" and instance is not None:
            out.append(instance)
        else:
            raise UnitFileError(f"specifier %{spec} is not expanded here (instance {instance!r})")
    return "".join(out)


def read_unit(path: Path, instance: str | None = None) -> Unit:
    """The unit, with `%i` expanded to `instance` (a template needs one)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None or not key.strip():
            raise UnitFileError(f"{path.name}: not a setting: {line!r}")
        current[key.strip()].append(expand(value.strip(), instance))
    name = path.name if instance is None else path.name.replace("@.", f"@{instance}.")
    return Unit(name, {k: dict(v) for k, v in sections.items()})
