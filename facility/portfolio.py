"""A portfolio: many estates in one deployment, loaded from a directory of site files.

Estates are written by different people, so building `b03` (and device `b03-u1-el1`) may exist
in several of them. A portfolio therefore scopes every id by its site (`riverside:b03`) and
merges the sites into one `Site` whose ids are unique: every consumer that looks ids up (the
rules engine's per-kind rows, the work-order store, a steward's buildings, the API's paths)
keeps working unchanged, and one estate's `b03` can never be mistaken for another's. Topics and
the simulator keep each site's own ids (`Site.by_topic` maps them back).

One site file is a deployment of one site with its plain ids, as before; a directory is a
portfolio even when it holds one file, so adding an estate never renames the others' ids.
`facility db scope-ids` moves a single-site database to the scoped ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from facility.catalog import KIND_NAMES
from facility.errors import SiteFileError
from facility.site import Asset, Building, Device, Site, Unit, load_site, scoped_id

PORTFOLIO_ID = "portfolio"
"""The id of the merged site a portfolio is seen as (no site file may use it)."""


def scope_site(site: Site) -> Site:
    """The site with every building, unit, device and asset id scoped by the site's id."""

    def key(local: str) -> str:
        return scoped_id(site.id, local)

    def device(d: Device) -> Device:
        return replace(
            d, id=key(d.id), building_id=key(d.building_id), unit_id=key(d.unit_id), site_id=site.id
        )

    def unit(u: Unit) -> Unit:
        return Unit(
            id=key(u.id),
            name=u.name,
            building_id=key(u.building_id),
            devices=tuple(device(d) for d in u.devices),
        )

    buildings = tuple(
        Building(id=key(b.id), name=b.name, units=tuple(unit(u) for u in b.units), site_id=site.id)
        for b in site.buildings
    )
    assets = tuple(
        Asset(
            id=key(a.id),
            name=a.name,
            type=a.type,
            building_id=key(a.building_id),
            unit_id=key(a.unit_id),
            device_ids=tuple(key(d) for d in a.device_ids),
        )
        for a in site.assets
    )
    return Site(
        id=site.id, name=site.name, timezone=site.timezone, buildings=buildings, assets=assets
    )


def merge_sites(sites: Iterable[Site], *, name: str = "Portfolio") -> Site:
    """One site of the scoped sites' buildings, devices renumbered per kind (each device's row
    in the per-kind arrays); `parts` keeps the sites themselves (names, time zones)."""
    parts = tuple(sites)
    counts = dict.fromkeys(KIND_NAMES, 0)

    def renumber(d: Device) -> Device:
        index = counts[d.kind]
        counts[d.kind] = index + 1
        return replace(d, kind_index=index)

    buildings = tuple(
        replace(
            b,
            units=tuple(replace(u, devices=tuple(renumber(d) for d in u.devices)) for u in b.units),
        )
        for s in parts
        for b in s.buildings
    )
    timezones = {s.timezone for s in parts}
    return Site(
        id=PORTFOLIO_ID,
        name=name,
        timezone=timezones.pop() if len(timezones) == 1 else "UTC",
        buildings=buildings,
        assets=tuple(a for s in parts for a in s.assets),
        parts=parts,
    )


def site_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def load_portfolio(directory: Path | str) -> Site:
    """Every `*.toml` site file of a directory, scoped and merged (see the module's docstring)."""
    directory = Path(directory)
    files = site_files(directory)
    if not files:
        raise SiteFileError(directory, None, "the directory holds no site files (*.toml)")
    sites: list[Site] = []
    seen: dict[str, Path] = {}
    for path in files:
        site = load_site(path)
        if site.id == PORTFOLIO_ID:
            raise SiteFileError(path, None, f"site id {PORTFOLIO_ID!r} is reserved")
        if site.id in seen:
            raise SiteFileError(
                path, None, f"site id {site.id!r} is already used by {seen[site.id].name}"
            )
        seen[site.id] = path
        scoped = scope_site(site)
        _check_lengths(scoped, path)
        sites.append(scoped)
    return merge_sites(sites)


MAX_SCOPED_ID = 64
"""The longest id the database and the API take (their id columns and paths)."""


def _check_lengths(site: Site, path: Path) -> None:
    """A scoped id (`site:id`) must still fit where ids are stored: shorten the site id or the
    id rather than find out at the first insert."""
    ids = [*site.building_by_id, *(u.id for b in site.buildings for u in b.units), *site.by_id]
    ids += [a.id for a in site.assets]
    too_long = [i for i in ids if len(i) > MAX_SCOPED_ID]
    if too_long:
        raise SiteFileError(
            path, None, f"scoped id {too_long[0]!r} is {len(too_long[0])} characters; in a "
            f"portfolio (site:id) ids may have at most {MAX_SCOPED_ID}: shorten the site id or "
            f"that id ({len(too_long)} too long)",
        )  # fmt: skip


def load_sites(path: Path | str) -> Site:
    """What `site.file` names: one site file (plain ids) or a directory of them (a portfolio)."""
    path = Path(path)
    return load_portfolio(path) if path.is_dir() else load_site(path)


def site_for(site: Site, ident: str) -> Site | None:
    """The site (a portfolio's part, or the one site itself) that a building id belongs to or
    that a site id names (orders of a whole site are filed on its id); None for neither."""
    part = site.site_of(ident)
    if part is not None:
        return part
    return next((s for s in site.sites if s.id == ident), None)
