"""Injections: which fault, on which devices, from when and for how long; the ledger of them.

An injection names a fault, its targets, when it starts, how long it lasts and its parameters:

    NAME[:TARGET[,TARGET...]][@START[+DURATION]][/PARAM=VALUE...]

    pump-dry-run                           pump-1 (the first pump) from 10 s, to the end
    pump-dry-run:pump-2@90+300             pump-2 from 90 s for 300 s
    elevator-entrapment:b03-u1-el2@30+5m
    bearing-wear:10%@1h+3d/rate_per_day=2  a tenth of the elevators, from 1 h, for 3 days
    device-silent:b07@2h+20m               every device of building b07
    lamp-failures:*@0/fraction=0.3         every lighting circuit

A TARGET is a device id, a building or unit id (its devices of the fault's kind), `*` (every
device the fault applies to) or `N%` (that share of them, at least one, picked with the seed).
Times are seconds, or carry a unit: `ms`, `s`, `m`, `h`, `d`. Without a target the fault hits
the first device it applies to; without `@` it starts at 10 s. Scenario files (TOML, see
`simulators.scenario`) list the same things one table per injection.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

import numpy as np
import orjson

from facility.catalog import KINDS, FieldType
from facility.site import Device, Site
from simulators.errors import InjectionError
from simulators.faults import (
    DAY_S,
    DEFAULT_SIGNAL,
    DEFAULT_START_S,
    FAULT_TYPES,
    SITE,
    FaultType,
    ParamValue,
)
from simulators.models.base import IntpArray

__all__ = [
    "Injection",
    "InjectionError",
    "Ledger",
    "build_injection",
    "parse_duration",
    "parse_injection",
]

# -- parsing ----------------------------------------------------------------------------------

SYNTAX = "NAME[:TARGET[,TARGET...]][@START[+DURATION]][/PARAM=VALUE...]"
_INJECTION = re.compile(
    r"^(?P<name>[a-z][a-z0-9-]*)"
    r"(?::(?P<targets>[^@/]+))?"
    r"(?:@(?P<start>[^+/]+)(?:\+(?P<duration>[^/]+))?)?"
    r"(?P<params>(?:/[^/]*)*)$"
)
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS: Final = MappingProxyType({"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S})


def parse_duration(value: object, what: str) -> float:
    """Seconds from a number or a text like '90', '5m', '1.5h', '3d'."""
    if isinstance(value, bool):
        raise InjectionError(f"{what} must be a time like 90, '5m', '2h' or '3d', got {value!r}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise InjectionError(f"{what} must be a non-negative time, got {value!r}")
        return float(value)
    match = _TIME.match(str(value))
    if not match:
        raise InjectionError(f"{what} must be a time like 90, '5m', '2h' or '3d', got {value!r}")
    return float(match[1]) * _UNITS[match[2] or "s"]


def _candidates(fault: FaultType, site: Site) -> list[Device]:
    return [d for d in site.devices if fault.applies_to(d)]


def _resolve_targets(
    fault: FaultType, targets: Sequence[str], site: Site, seed: int, salt: str
) -> tuple[Device, ...]:
    candidates = _candidates(fault, site)
    if fault.behaviour == "disconnect":
        if targets:
            raise InjectionError(f"{fault.name} acts on the broker connection and takes no target")
        return ()
    if not candidates:
        raise InjectionError(f"site {site.id!r} has no {fault.what} to inject {fault.name} into")
    if not targets:
        return tuple(candidates) if fault.kind == SITE else (candidates[0],)
    chosen: set[str] = set()
    for raw in targets:
        target = raw.strip()
        if target == "*":
            chosen.update(d.id for d in candidates)
        elif target.endswith("%"):
            try:
                share = float(target[:-1]) / 100.0
            except ValueError:
                raise InjectionError(f"{fault.name}: bad share {target!r}; use e.g. 10%") from None
            if not 0.0 < share <= 1.0:
                raise InjectionError(f"{fault.name}: share {target!r} must be in (0%, 100%]")
            count = max(1, round(share * len(candidates)))
            rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
            picked = rng.choice(len(candidates), size=count, replace=False)
            chosen.update(candidates[int(i)].id for i in picked)
        elif target in site.by_id:
            device = site.by_id[target]
            if not fault.applies_to(device):
                raise InjectionError(f"{fault.name} needs a {fault.what}; {target!r} is not one")
            chosen.add(device.id)
        else:
            group = [
                d
                for d in candidates
                if target in (d.building_id, d.unit_id) or (site.scoped and d.site_id == target)
            ]  # a building, a unit, or one estate of a portfolio
            if not group:
                raise InjectionError(
                    f"{fault.name} needs a {fault.what}; {target!r} is not one "
                    "(nor a building or unit with one)"
                )
            chosen.update(d.id for d in group)
    if fault.set_wide:
        units = {site.by_id[i].unit_id for i in chosen}
        chosen.update(d.id for d in candidates if d.unit_id in units)
    return tuple(d for d in site.devices if d.id in chosen)


def _parameters(
    fault: FaultType, given: Mapping[str, object], devices: Sequence[Device]
) -> dict[str, ParamValue]:
    unknown = sorted(set(given) - set(fault.parameters))
    if unknown:
        known = ", ".join(sorted(fault.parameters)) or "none"
        raise InjectionError(
            f"{fault.name} has no parameter {', '.join(map(repr, unknown))}; known: {known}"
        )
    out: dict[str, ParamValue] = dict(fault.parameters)
    for key, value in given.items():
        default = fault.parameters[key]
        if isinstance(default, float):
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InjectionError(
                    f"{fault.name}: {key} must be a number, got {value!r}"
                ) from None
            if not math.isfinite(number) or number < 0:
                raise InjectionError(f"{fault.name}: {key} must be a non-negative number")
            out[key] = number
        else:
            out[key] = str(value)
    if fault.overlay is not None and "signal" in out:
        signal = str(out["signal"])
        for device in devices:
            name = signal or DEFAULT_SIGNAL[device.kind]
            spec = KINDS[device.kind]
            if name not in spec.index or spec.fields[spec.col(name)].type is not FieldType.FLOAT:
                floats = ", ".join(f.name for f in spec.fields if f.type is FieldType.FLOAT)
                raise InjectionError(
                    f"{fault.name}: {device.id!r} ({device.kind}) has no analog signal "
                    f"{name!r}; choose one of: {floats}"
                )
    if fault.behaviour == "bad-payloads":
        from simulators.badpayloads import BAD_PAYLOADS  # noqa: PLC0415 (avoids a cycle)

        kinds = str(out["kinds"])
        names = list(BAD_PAYLOADS) if kinds == "all" else [k.strip() for k in kinds.split(",")]
        wrong = [k for k in names if k not in BAD_PAYLOADS]
        if wrong:
            raise InjectionError(
                f"bad-payloads: unknown kind(s) {', '.join(wrong)}; "
                f"known: {', '.join(BAD_PAYLOADS)}"
            )
        if float(out["count"]) < 1:
            raise InjectionError("bad-payloads: count must be at least 1")
    return out


@dataclass(frozen=True, slots=True)
class Injection:
    fault: FaultType
    devices: tuple[Device, ...]
    start_s: float
    duration_s: float | None
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    label: str = ""

    def active(self, elapsed_s: float) -> bool:
        if elapsed_s < self.start_s:
            return False
        return self.duration_s is None or elapsed_s < self.start_s + self.duration_s

    @property
    def rows(self) -> IntpArray:
        return np.array([d.kind_index for d in self.devices], dtype=np.intp)

    def rows_of(self, kind: str) -> IntpArray:
        return np.array([d.kind_index for d in self.devices if d.kind == kind], dtype=np.intp)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if any(d.kind == k for d in self.devices))


def build_injection(
    name: str,
    site: Site,
    *,
    targets: Sequence[str] = (),
    start_s: float = DEFAULT_START_S,
    duration_s: float | None = None,
    parameters: Mapping[str, object] | None = None,
    seed: int = 0,
    label: str = "",
) -> Injection:
    fault = FAULT_TYPES.get(name)
    if fault is None:
        raise InjectionError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULT_TYPES))}")
    if duration_s is not None and duration_s <= 0:
        raise InjectionError(f"{name}: the duration must be positive")
    label = label or name
    devices = _resolve_targets(fault, targets, site, seed, label)
    params = _parameters(fault, parameters or {}, devices)
    return Injection(fault, devices, start_s, duration_s, MappingProxyType(params), label)


def parse_injection(text: str, site: Site, *, seed: int = 0) -> Injection:
    """An injection from its command-line form (see the module docstring)."""
    text = text.strip()
    match = _INJECTION.match(text)

    def bad(detail: str) -> InjectionError:
        return InjectionError(f"bad --inject {text!r}: expected {SYNTAX} ({detail})")

    if not match:
        raise bad("see docs/simulators.md")
    try:
        start = parse_duration(match["start"], "START") if match["start"] else DEFAULT_START_S
        duration = parse_duration(match["duration"], "DURATION") if match["duration"] else None
    except InjectionError as exc:
        raise bad(str(exc)) from None
    params: dict[str, object] = {}
    for part in (match["params"] or "").split("/")[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise bad(f"parameter {part!r} is not KEY=VALUE")
        params[key] = value
    targets = [t for t in (match["targets"] or "").split(",") if t]
    return build_injection(
        match["name"],
        site,
        targets=targets,
        start_s=start,
        duration_s=duration,
        parameters=params,
        seed=seed,
        label=text,
    )


class Ledger:
    """Ground truth: one JSON line per injected fault and device, written when the fault ends
    (or when the run ends, with the last tick's time as its end).

    Keys: device (null for the broker connection), kind, fault, start_ms, end_ms, parameters
    (the effective parameters; bad-payloads adds the messages sent by expected rejection).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[dict[str, object]] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        injection: Injection,
        start_ms: int,
        end_ms: int | None,
        *,
        extra: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        """`extra` adds parameters per device id ('' = the line without a device)."""
        devices: Sequence[Device | None] = injection.devices or (None,)
        lines = []
        for device in devices:
            params: dict[str, object] = dict(injection.parameters)
            params.update((extra or {}).get(device.id if device else "", {}))
            entry: dict[str, object] = {
                "device": device.id if device else None,
                "kind": device.kind if device else None,
                "fault": injection.fault.name,
                "start_ms": start_ms,
                "end_ms": end_ms,
                "parameters": params,
            }
            self.entries.append(entry)
            lines.append(orjson.dumps(entry))
        if self.path is not None:
            with self.path.open("ab") as out:
                out.write(b"".join(line + b"\n" for line in lines))
