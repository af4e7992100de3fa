"""The site model (site -> building -> unit -> device), loaded from a TOML site file.

A site file is written by people, so every mistake is reported with the file, the line and
what is wrong, rather than a traceback. Devices are numbered per kind in file order; that
number is the device's row in every per-kind state array downstream.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from facility.catalog import KIND_NAMES
from facility.errors import SiteFileError
from facility.toml_file import TomlLines, parse_toml, read_text

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""Ids appear in MQTT topics and line-protocol tags: no '/', '+', '#', spaces or commas."""

SCOPE_SEPARATOR = ":"
"""Between a site id and an id of that site in a portfolio's scoped ids (`riverside:b03`); no
site file id contains it."""


def scoped_id(site_id: str, local: str) -> str:
    return f"{site_id}{SCOPE_SEPARATOR}{local}"


def local_id(ident: str) -> str:
    """The id as the site file (and the device's topic) has it: `riverside:b03` -> `b03`."""
    return ident.rpartition(SCOPE_SEPARATOR)[2]


def site_of_id(ident: str) -> str | None:
    """The site a scoped id names (`riverside:b03` -> `riverside`), None for a plain id."""
    site, sep, _ = ident.rpartition(SCOPE_SEPARATOR)
    return site if sep else None


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: str
    name: str
    building_id: str
    unit_id: str
    kind_index: int
    """Row of this device in the per-kind arrays."""
    params: Mapping[str, float] = field(default_factory=dict)
    """Rule parameters set for this device or inherited from its unit, building and site."""
    site_id: str = ""
    """The site the device belongs to ("" = the site that holds it)."""


@dataclass(frozen=True, slots=True)
class Asset:
    """Equipment several devices observe (a break tank seen by the pumps of a set, a riser, a
    lighting panel): a fault of it is one work order on the asset, listing who saw it."""

    id: str
    name: str
    type: str
    """What it is (`break_tank`); a rule with `asset = "break_tank"` reports faults of it."""
    building_id: str
    unit_id: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    name: str
    building_id: str
    devices: tuple[Device, ...]


@dataclass(frozen=True, slots=True)
class Building:
    id: str
    name: str
    units: tuple[Unit, ...]
    site_id: str = ""
    """The site the building belongs to ("" = the site that holds it)."""

    @property
    def devices(self) -> tuple[Device, ...]:
        return tuple(d for u in self.units for d in u.devices)


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    timezone: str
    buildings: tuple[Building, ...]
    assets: tuple[Asset, ...] = ()
    parts: tuple[Site, ...] = ()
    """The sites a portfolio merges (`facility.portfolio`); empty for one site file."""
    devices: tuple[Device, ...] = field(init=False)
    by_kind: Mapping[str, tuple[Device, ...]] = field(init=False)
    """Devices of each kind, in kind_index order (every catalog kind present, maybe empty)."""
    by_id: Mapping[str, Device] = field(init=False)
    building_by_id: Mapping[str, Building] = field(init=False)
    name_by_id: Mapping[str, str] = field(init=False)
    """Device and asset ids -> their names (an asset's fault is filed on the asset)."""
    by_topic: Mapping[tuple[str, str], Device] = field(init=False)
    """(site id, device id as in the topic) -> the device: a portfolio's device ids are scoped
    by site (`site:device`), its topics carry the site's own ids."""

    def __post_init__(self) -> None:
        devices = tuple(d for b in self.buildings for d in b.devices)
        object.__setattr__(self, "devices", devices)
        object.__setattr__(
            self,
            "by_kind",
            MappingProxyType({k: tuple(d for d in devices if d.kind == k) for k in KIND_NAMES}),
        )
        object.__setattr__(self, "by_id", MappingProxyType({d.id: d for d in devices}))
        object.__setattr__(
            self, "building_by_id", MappingProxyType({b.id: b for b in self.buildings})
        )
        names = {**{a.id: a.name for a in self.assets}, **{d.id: d.name for d in devices}}
        object.__setattr__(self, "name_by_id", MappingProxyType(names))
        topics = {(d.site_id or self.id, local_id(d.id)): d for d in devices}
        object.__setattr__(self, "by_topic", MappingProxyType(topics))

    @property
    def sites(self) -> tuple[Site, ...]:
        """The sites this one stands for: the parts of a portfolio, or itself."""
        return self.parts or (self,)

    @property
    def scoped(self) -> bool:
        """Whether ids are scoped by site (`site:b03`): a portfolio's are."""
        return bool(self.parts)

    def site_of(self, building_id: str) -> Site | None:
        """The site a building of this one belongs to."""
        building = self.building_by_id.get(building_id)
        if building is None:
            return None
        return next((s for s in self.sites if s.id == (building.site_id or self.id)), self)

    def device_ids(self, kind: str) -> tuple[str, ...]:
        return tuple(d.id for d in self.by_kind[kind])


_SITE_KEYS = {"id", "name", "timezone", "params"}
_BUILDING_KEYS = {"id", "name", "units", "params"}
_UNIT_KEYS = {"id", "name", "devices", "params"}
_DEVICE_KEYS = {"id", "kind", "name", "params"}
_ASSET_KEYS = {"id", "name", "type", "devices"}


_ASSIGNMENT = re.compile(r"""(?:^|[{,\s])([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class _Locator(TomlLines):
    """Finds the line a value or table header sits on, for error messages.

    Every `key = "value"` of the file is indexed once, so looking up the lines of a site with
    thousands of devices stays linear.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._values: dict[tuple[str, str], list[int]] = {}
        for number, line in enumerate(self.lines, start=1):
            for match in _ASSIGNMENT.finditer(line):
                value = match[2] if match[2] is not None else match[3]
                self._values.setdefault((match[1], value), []).append(number)

    def value_line(self, key: str, value: object, occurrence: int = 0) -> int | None:
        """Line of the `occurrence`-th (0-based) `key = "value"` in the file."""
        if not isinstance(value, str):
            return None
        lines = self._values.get((key, value), [])
        return lines[occurrence] if occurrence < len(lines) else None


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.loc = _Locator(text)
        self.seen_ids: dict[str, str] = {}
        self.id_occurrences: Counter[str] = Counter()
        self.kind_counts: dict[str, int] = dict.fromkeys(KIND_NAMES, 0)
        self.site_params: dict[str, float] = {}
        self.site_id = ""

    def fail(self, line: int | None, message: str) -> SiteFileError:
        return SiteFileError(self.path, line, message)

    def table(self, value: Any, what: str, line: int | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(line, f"{what} must be a table, got {type(value).__name__}")
        return value

    def text(
        self, table: Mapping[str, Any], key: str, what: str, line: int | None, *, default: str = ""
    ) -> str:
        if key not in table:
            if default:
                return default
            raise self.fail(line, f"{what} is missing {key!r}")
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(line, f"{what}: {key!r} must be a non-empty string, got {value!r}")
        return value

    def ident(
        self, table: Mapping[str, Any], what: str, line: int | None
    ) -> tuple[str, int | None]:
        ident = self.text(table, "id", what, line)
        occurrence = self.id_occurrences[ident]
        self.id_occurrences[ident] += 1
        line = self.loc.value_line("id", ident, occurrence) or line
        if not ID_PATTERN.match(ident):
            raise self.fail(
                line,
                f"{what} id {ident!r} is not valid: use 1-64 lower-case letters, digits, '-' "
                "or '_', starting with a letter or digit",
            )
        return ident, line

    def unique(self, ident: str, what: str, line: int | None) -> None:
        if ident in self.seen_ids:
            raise self.fail(line, f"duplicate id {ident!r}: already used by {self.seen_ids[ident]}")
        self.seen_ids[ident] = what

    def known_keys(
        self, table: Mapping[str, Any], allowed: set[str], what: str, line: int | None
    ) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(
                line,
                f"{what} has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}",
            )

    def params(
        self, table: Mapping[str, Any], inherited: Mapping[str, float], what: str, line: int | None
    ) -> dict[str, float]:
        """This node's rule parameters over the ones it inherits (`params = { name = 1.5 }`)."""
        raw = table.get("params", {})
        if not isinstance(raw, dict):
            raise self.fail(line, f"{what}: 'params' must be a table of name = number")
        merged = dict(inherited)
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(
                    self.loc.value_line(name, value) or line,
                    f"{what}: parameter {name!r} must be a number, got {value!r}",
                )
            merged[name] = float(value)
        return merged

    def site(self, data: dict[str, Any]) -> Site:
        self.known_keys(data, {"site", "buildings", "assets"}, "site file", None)
        if "site" not in data:
            raise self.fail(None, "missing the [site] table")
        site = self.table(data["site"], "[site]", None)
        site_line = self.loc.value_line("id", site.get("id"))
        self.known_keys(site, _SITE_KEYS, "[site]", site_line)
        site_id, site_line = self.ident(site, "[site]", site_line)
        self.site_id = site_id
        name = self.text(site, "name", "[site]", site_line, default=site_id)
        timezone = self.text(site, "timezone", "[site]", site_line, default="UTC")
        self.site_params = self.params(site, {}, "[site]", site_line)
        raw_buildings = data.get("buildings")
        if not isinstance(raw_buildings, list) or not raw_buildings:
            raise self.fail(None, "the site has no [[buildings]]")
        buildings = tuple(self.building(i, b) for i, b in enumerate(raw_buildings))
        devices = {d.id: d for b in buildings for d in b.devices}
        raw_assets = data.get("assets", [])
        if not isinstance(raw_assets, list):
            raise self.fail(None, "'assets' must be an array of tables ([[assets]])")
        assets = tuple(self.asset(i, a, devices) for i, a in enumerate(raw_assets))
        seen: dict[tuple[str, str], str] = {}
        for a in assets:
            for device_id in a.device_ids:
                other = seen.setdefault((a.type, device_id), a.id)
                if other != a.id:
                    raise self.fail(
                        self.loc.value_line("id", a.id),
                        f"asset {a.id!r}: device {device_id!r} already observes {a.type} "
                        f"{other!r} (a device sees one asset of each type)",
                    )
        return Site(id=site_id, name=name, timezone=timezone, buildings=buildings, assets=assets)

    def asset(self, number: int, raw: Any, devices: Mapping[str, Device]) -> Asset:
        line = self.loc.header_line("assets", number)
        table = self.table(raw, f"asset #{number + 1}", line)
        ident, line = self.ident(table, f"asset #{number + 1}", line)
        what = f"asset {ident!r}"
        self.known_keys(table, _ASSET_KEYS, what, line)
        self.unique(ident, what, line)
        kind = self.text(table, "type", what, line)
        if not ID_PATTERN.match(kind):
            raise self.fail(line, f"{what}: type {kind!r} must look like an id (break_tank)")
        observed = table.get("devices")
        if (
            not isinstance(observed, list)
            or not observed
            or not all(isinstance(d, str) for d in observed)
        ):
            raise self.fail(line, f"{what}: 'devices' must be a non-empty list of device ids")
        unknown = [d for d in observed if d not in devices]
        if unknown:
            raise self.fail(line, f"{what} lists unknown device(s) {', '.join(unknown)}")
        first = devices[observed[0]]
        return Asset(
            id=ident,
            name=self.text(table, "name", what, line, default=ident),
            type=kind,
            building_id=first.building_id,
            unit_id=first.unit_id,
            device_ids=tuple(dict.fromkeys(observed)),
        )

    def building(self, number: int, raw: Any) -> Building:
        line = self.loc.header_line("buildings", number)
        table = self.table(raw, f"building #{number + 1}", line)
        ident, line = self.ident(table, f"building #{number + 1}", line)
        what = f"building {ident!r}"
        self.known_keys(table, _BUILDING_KEYS, what, line)
        self.unique(ident, what, line)
        raw_units = table.get("units")
        if not isinstance(raw_units, list) or not raw_units:
            raise self.fail(line, f"{what} has no [[buildings.units]]")
        inherited = self.params(table, self.site_params, what, line)
        units = tuple(self.unit(ident, u, line, inherited) for u in raw_units)
        return Building(
            id=ident,
            name=self.text(table, "name", what, line, default=ident),
            units=units,
            site_id=self.site_id,
        )

    def unit(
        self, building_id: str, raw: Any, building_line: int | None, inherited: Mapping[str, float]
    ) -> Unit:
        table = self.table(raw, f"a unit of building {building_id!r}", building_line)
        ident, line = self.ident(table, f"a unit of building {building_id!r}", building_line)
        what = f"unit {ident!r}"
        self.known_keys(table, _UNIT_KEYS, what, line)
        self.unique(ident, what, line)
        raw_devices = table.get("devices", [])
        if not isinstance(raw_devices, list):
            raise self.fail(line, f"{what}: 'devices' must be an array of tables")
        params = self.params(table, inherited, what, line)
        devices = tuple(self.device(building_id, ident, d, line, params) for d in raw_devices)
        return Unit(
            id=ident,
            name=self.text(table, "name", what, line, default=ident),
            building_id=building_id,
            devices=devices,
        )

    def device(
        self,
        building_id: str,
        unit_id: str,
        raw: Any,
        unit_line: int | None,
        inherited: Mapping[str, float],
    ) -> Device:
        table = self.table(raw, f"a device of unit {unit_id!r}", unit_line)
        ident, line = self.ident(table, f"a device of unit {unit_id!r}", unit_line)
        what = f"device {ident!r}"
        self.known_keys(table, _DEVICE_KEYS, what, line)
        self.unique(ident, what, line)
        kind = self.text(table, "kind", what, line)
        if kind not in KIND_NAMES:
            raise self.fail(
                self.loc.value_line("kind", kind) or line,
                f"{what} has unknown kind {kind!r}; known kinds: {', '.join(KIND_NAMES)}",
            )
        index = self.kind_counts[kind]
        self.kind_counts[kind] = index + 1
        return Device(
            id=ident,
            kind=kind,
            name=self.text(table, "name", what, line, default=ident),
            building_id=building_id,
            unit_id=unit_id,
            kind_index=index,
            params=MappingProxyType(self.params(table, inherited, what, line)),
            site_id=self.site_id,
        )


def parse_site(text: str, path: Path | str = "<site>") -> Site:
    path = Path(path)
    return _Parser(path, text).site(parse_toml(text, path, SiteFileError))


def load_site(path: Path | str) -> Site:
    path = Path(path)
    text = read_text(path, SiteFileError)
    return parse_site(text, path)
