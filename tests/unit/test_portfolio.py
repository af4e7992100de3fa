"""A portfolio: several site files in a directory, ids scoped by site, one merged site."""

from __future__ import annotations

from pathlib import Path

import pytest

from facility.errors import SiteFileError
from facility.portfolio import PORTFOLIO_ID, load_portfolio, load_sites
from facility.site import local_id, site_of_id

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
devices = [
  {{ id = "b03-u1-el1", kind = "elevator", name = "Elevator 1" }},
  {{ id = "b03-u1-door", kind = "gate", name = "Unit door" }},
]

[[assets]]
id = "tank"
type = "break_tank"
devices = ["b03-u1-el1"]
"""


def _estate(directory: Path, site: str, tz: str = "Asia/Shanghai") -> Path:
    path = directory / f"{site}.toml"
    path.write_text(ESTATE.format(site=site, name=site.title(), tz=tz), encoding="utf-8")
    return path


def test_colliding_ids_are_scoped_by_site(tmp_path: Path) -> None:
    for site in ("riverside", "hilltop", "harbour"):
        _estate(tmp_path, site)
    portfolio = load_portfolio(tmp_path)
    assert portfolio.id == PORTFOLIO_ID
    assert portfolio.scoped
    assert [s.id for s in portfolio.sites] == ["harbour", "hilltop", "riverside"]
    assert sorted(portfolio.building_by_id) == ["harbour:b03", "hilltop:b03", "riverside:b03"]
    device = portfolio.by_id["hilltop:b03-u1-el1"]
    assert (device.building_id, device.unit_id, device.site_id) == (
        "hilltop:b03",
        "hilltop:b03-u1",
        "hilltop",
    )
    # the topic carries the site's own ids
    assert portfolio.by_topic[("hilltop", "b03-u1-el1")] is device
    assert ("hilltop", "hilltop:b03-u1-el1") not in portfolio.by_topic
    # one row per device in the per-kind arrays, across the sites
    assert [d.kind_index for d in portfolio.by_kind["elevator"]] == [0, 1, 2]
    assert portfolio.assets[2].device_ids == ("riverside:b03-u1-el1",)
    assert portfolio.site_of("riverside:b03") is portfolio.sites[2]
    assert portfolio.site_of("b03") is None
    assert (local_id("riverside:b03"), site_of_id("riverside:b03"), site_of_id("b03")) == (
        "b03",
        "riverside",
        None,
    )


def test_one_site_file_keeps_plain_ids(tmp_path: Path) -> None:
    site = load_sites(_estate(tmp_path, "riverside"))
    assert not site.scoped
    assert site.sites == (site,)
    assert list(site.building_by_id) == ["b03"]
    assert site.by_topic[("riverside", "b03-u1-el1")].id == "b03-u1-el1"
    assert site.site_of("b03") is site


def test_a_directory_of_one_file_is_a_portfolio(tmp_path: Path) -> None:
    _estate(tmp_path, "riverside")
    assert list(load_sites(tmp_path).building_by_id) == ["riverside:b03"]


def test_time_zone_of_mixed_sites_is_per_site(tmp_path: Path) -> None:
    _estate(tmp_path, "riverside", "Asia/Shanghai")
    _estate(tmp_path, "hilltop", "Europe/Berlin")
    portfolio = load_portfolio(tmp_path)
    assert portfolio.timezone == "UTC"
    hilltop = portfolio.site_of("hilltop:b03")
    assert hilltop is not None
    assert hilltop.timezone == "Europe/Berlin"


def test_bad_directories_are_reported(tmp_path: Path) -> None:
    with pytest.raises(SiteFileError, match="no site files"):
        load_portfolio(tmp_path)
    _estate(tmp_path, "riverside")
    (tmp_path / "zz-copy.toml").write_text(
        (tmp_path / "riverside.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(SiteFileError, match=r"already used by riverside\.toml"):
        load_portfolio(tmp_path)
    (tmp_path / "zz-copy.toml").unlink()
    _estate(tmp_path, "portfolio")
    with pytest.raises(SiteFileError, match="reserved"):
        load_portfolio(tmp_path)
    (tmp_path / "portfolio.toml").unlink()
    (tmp_path / "broken.toml").write_text("[site]\nid = 'Bad Id'\n", encoding="utf-8")
    with pytest.raises(SiteFileError, match=r"broken\.toml"):
        load_portfolio(tmp_path)


def test_a_scoped_id_too_long_to_store_is_refused(tmp_path: Path) -> None:
    long_site = "s" * 60
    _estate(tmp_path, long_site)  # `sss...:b03-u1-el1` is over 64 characters
    with pytest.raises(SiteFileError, match="at most 64: shorten the site id"):
        load_portfolio(tmp_path)
