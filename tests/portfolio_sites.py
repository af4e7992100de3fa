"""Three estates whose site files use the same building and device ids, in three time zones:
a portfolio where one estate's `b03` must never be taken for another's."""

from __future__ import annotations

from pathlib import Path

ESTATES = {"alpha": "Asia/Shanghai", "beta": "Europe/London", "gamma": "America/New_York"}
"""Each estate's id and time zone (Shanghai UTC+8, London UTC+0 in winter, New York UTC-5)."""

ESTATE = """
[site]
id = "{site}"
name = "{name}"
timezone = "{tz}"

[[buildings]]
id = "b03"
name = "Building 3"

[[buildings.units]]
id = "b03-u1"
name = "Unit 1"
devices = [
  {{ id = "b03-u1-el1", kind = "elevator", name = "Elevator 1" }},
  {{ id = "b03-u1-el2", kind = "elevator", name = "Elevator 2" }},
  {{ id = "b03-pump", kind = "pump", name = "Booster" }},
]
"""

DEVICES_PER_ESTATE = 3


def write_estates(directory: Path) -> Path:
    """The three site files in `directory` (created); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for site, tz in ESTATES.items():
        text = ESTATE.format(site=site, name=f"Estate {site.title()}", tz=tz)
        (directory / f"{site}.toml").write_text(text, encoding="utf-8")
    return directory
