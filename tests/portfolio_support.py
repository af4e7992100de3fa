"""A portfolio for the API's tests: three estates in three time zones, each with a building
`b03` (and the same device ids), one estate with a second building; and the users a portfolio
has (a steward of one estate's b03, a steward of a whole estate, a regional desk)."""

from __future__ import annotations

from pathlib import Path

from alerts.store import Photo, WorkOrderStore
from api.auth.users import UserStore
from facility.portfolio import load_portfolio
from facility.site import Site
from tests.api_support import PASSWORD

ESTATES = {
    "alpha": ("Alpha Court", "Asia/Shanghai"),
    "bravo": ("Bravo Gardens", "Europe/Berlin"),
    "charlie": ("Charlie Towers", "America/New_York"),
}
BUILDING = """
[[buildings]]
id = "{building}"
name = "Building {number}"

[[buildings.units]]
id = "{building}-u1"
name = "Unit 1"
devices = [
  {{ id = "{building}-u1-el1", kind = "elevator", name = "Elevator 1" }},
  {{ id = "{building}-u1-door", kind = "gate", name = "Unit door" }},
]
"""
PORTFOLIO_USERS: dict[str, dict[str, object]] = {
    "alpha-steward": {"role": "steward", "buildings": ["alpha:b03"]},
    "bravo-steward": {"role": "steward", "sites": ["bravo"]},
    "charlie-desk": {"role": "dispatcher", "sites": ["charlie"]},
    "charlie-tech": {"role": "technician", "team": "lift-contractor", "sites": ["charlie"]},
}


def write_estates(directory: Path) -> Path:
    """The site files of the three estates (bravo has b01 beside b03)."""
    directory.mkdir(parents=True, exist_ok=True)
    for site_id, (name, tz) in ESTATES.items():
        buildings = ["b01", "b03"] if site_id == "bravo" else ["b03"]
        text = f'[site]\nid = "{site_id}"\nname = "{name}"\ntimezone = "{tz}"\n'
        text += "".join(BUILDING.format(building=b, number=int(b[1:])) for b in buildings)
        (directory / f"{site_id}.toml").write_text(text, encoding="utf-8")
    return directory


def portfolio(directory: Path) -> Site:
    return load_portfolio(write_estates(directory))


def add_portfolio_users(users: UserStore, site: Site) -> None:
    known_sites = [s.id for s in site.sites]
    for name, spec in PORTFOLIO_USERS.items():
        users.add(
            name, PASSWORD, str(spec["role"]),
            team=spec.get("team"),  # type: ignore[arg-type]
            buildings=spec.get("buildings", ()),  # type: ignore[arg-type]
            known_buildings=list(site.building_by_id),
            sites=spec.get("sites", ()),  # type: ignore[arg-type]
            known_sites=known_sites,
        )  # fmt: skip


def file_report(store: WorkOrderStore, site: Site, building_id: str) -> int:
    """A resident's report (with a photo) on the building's first unit; its order's id."""
    unit = site.building_by_id[building_id].units[0]
    return store.create_report(
        site_id=unit.building_id.partition(":")[0], building_id=building_id, unit_id=unit.id,
        device_id=None, kind=None, description=f"report in {building_id}",
        photo=Photo("image/png", b"\x89PNG\r\n\x1a\n"),
    ).id  # fmt: skip
