"""facility/site.py: the demo site loads; bad site files name the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from facility.errors import SiteFileError
from facility.site import Site, load_site, parse_site

DEMO_SITE = Path(__file__).resolve().parents[2] / "sites" / "shangri-la.toml"

HEADER = '[site]\nid = "s1"\n\n[[buildings]]\nid = "b1"\n\n[[buildings.units]]\nid = "u1"\n'
"""Lines 1-8 of every small site below; the unit's `id` is on line 8."""


def _error(text: str) -> SiteFileError:
    with pytest.raises(SiteFileError) as caught:
        parse_site(text, "test.toml")
    return caught.value


# -- the demo site ---------------------------------------------------------------------------


def test_demo_site_has_its_buildings_units_and_devices() -> None:
    site = load_site(DEMO_SITE)

    assert site.id == "shangri-la"
    assert site.name == "Shangri-La Residences"
    assert site.timezone == "Asia/Shanghai"
    assert len(site.buildings) == 13
    assert [b.id for b in site.buildings][-1] == "estate"
    assert sum(len(b.units) for b in site.buildings) == 27
    counts = {kind: len(devices) for kind, devices in site.by_kind.items()}
    assert counts == {"elevator": 48, "lighting": 51, "gate": 26, "pump": 3}
    assert len(site.devices) == 128
    assert len(site.by_id) == 128


def test_demo_site_devices_know_their_building_and_unit() -> None:
    site = load_site(DEMO_SITE)

    pump = site.by_id["pump-2"]
    assert (pump.kind, pump.building_id, pump.unit_id, pump.name) == (
        "pump",
        "estate",
        "pump-room",
        "Booster pump 2",
    )
    assert pump.kind_index == 1
    assert site.device_ids("pump") == ("pump-1", "pump-2", "pump-3")
    assert site.building_by_id["b01"].name == "Building 1"
    assert len(site.building_by_id["b01"].devices) == 10


def test_every_kind_is_numbered_0_to_n_in_the_demo_site() -> None:
    site = load_site(DEMO_SITE)

    for devices in site.by_kind.values():
        assert [d.kind_index for d in devices] == list(range(len(devices)))
    # b01-u1 lists el1, el2, stair, emerg, door: the first of each kind in the file.
    assert site.by_kind["elevator"][:3] == (
        site.by_id["b01-u1-el1"],
        site.by_id["b01-u1-el2"],
        site.by_id["b01-u2-el1"],
    )
    assert site.by_id["b01-u1-emerg"].kind_index == 1
    assert site.by_id["b01-u2-stair"].kind_index == 2


# -- a small site ----------------------------------------------------------------------------


def test_kind_index_counts_per_kind_in_file_order_across_units_and_buildings() -> None:
    site = parse_site(
        HEADER
        + "devices = [\n"
        + '  { id = "p1", kind = "pump" },\n'
        + '  { id = "g1", kind = "gate" },\n'
        + '  { id = "p2", kind = "pump" },\n'
        + "]\n"
        + '\n[[buildings.units]]\nid = "u2"\ndevices = [\n'
        + '  { id = "g2", kind = "gate" },\n'
        + '  { id = "p3", kind = "pump" },\n'
        + "]\n"
        + '\n[[buildings]]\nid = "b2"\n\n[[buildings.units]]\nid = "u3"\n'
        + 'devices = [{ id = "p4", kind = "pump" }, { id = "e1", kind = "elevator" }]\n'
    )

    index = {d.id: (d.kind, d.kind_index) for d in site.devices}
    assert index == {
        "p1": ("pump", 0),
        "g1": ("gate", 0),
        "p2": ("pump", 1),
        "g2": ("gate", 1),
        "p3": ("pump", 2),
        "p4": ("pump", 3),
        "e1": ("elevator", 0),
    }
    assert site.device_ids("pump") == ("p1", "p2", "p3", "p4")
    assert site.device_ids("lighting") == ()
    assert site.by_id["p4"].building_id == "b2"
    assert site.by_id["p4"].unit_id == "u3"


def test_names_and_timezone_default_when_left_out() -> None:
    site = parse_site(HEADER + 'devices = [{ id = "p1", kind = "pump" }]\n')

    assert (site.name, site.timezone) == ("s1", "UTC")
    assert site.buildings[0].name == "b1"
    assert site.buildings[0].units[0].name == "u1"
    assert site.by_id["p1"].name == "p1"


def test_devices_may_be_written_as_arrays_of_tables() -> None:
    site = parse_site(
        HEADER
        + '\n[[buildings.units.devices]]\nid = "p1"\nkind = "pump"\nname = "Pump one"\n'
        + '\n[[buildings.units.devices]]\nid = "p2"\nkind = "pump"\n'
    )

    assert [(d.id, d.kind_index, d.name) for d in site.devices] == [
        ("p1", 0, "Pump one"),
        ("p2", 1, "p2"),
    ]


# -- bad site files --------------------------------------------------------------------------


def test_invalid_toml_names_the_parsers_line() -> None:
    error = _error('[site]\nid = "s1"\nname = \n')

    assert error.line == 3
    assert error.path == Path("test.toml")
    assert "not valid TOML" in error.message
    assert str(error).startswith("test.toml:3: ")


def test_missing_site_table() -> None:
    error = _error('[[buildings]]\nid = "b1"\n')

    assert error.line is None
    assert "missing the [site] table" in error.message


def test_site_without_buildings() -> None:
    error = _error('[site]\nid = "s1"\nname = "Empty"\n')

    assert error.line is None
    assert "no [[buildings]]" in error.message


def test_building_without_units_names_the_building_line() -> None:
    error = _error('[site]\nid = "s1"\n\n[[buildings]]\nid = "b1"\nname = "One"\n')

    assert error.line == 5
    assert "'b1' has no [[buildings.units]]" in error.message


def test_unknown_kind_names_the_kind_line() -> None:
    error = _error(
        HEADER + '\n[[buildings.units.devices]]\nid = "p1"\nkind = "pump"\n'
        '\n[[buildings.units.devices]]\nid = "x1"\nname = "X"\nkind = "boiler"\n'
    )

    assert error.line == 17
    assert "unknown kind 'boiler'" in error.message
    assert "known kinds: elevator, lighting, gate, pump" in error.message


def test_duplicate_device_id_names_the_line_of_the_duplicate() -> None:
    error = _error(
        HEADER + "devices = [\n"
        '  { id = "p1", kind = "pump" },\n'
        '  { id = "p2", kind = "pump" },\n'
        '  { id = "p1", kind = "gate" },\n'
        "]\n"
    )

    assert "duplicate id 'p1'" in error.message
    assert error.line == 12


def test_duplicate_device_id_is_an_error() -> None:
    error = _error(
        HEADER + "devices = [\n"
        '  { id = "p1", kind = "pump" },\n'
        '  { id = "p1", kind = "gate" },\n'
        "]\n"
    )

    assert error.message == "duplicate id 'p1': already used by device 'p1'"
    assert error.line is not None


def test_an_id_used_by_a_unit_and_a_device_is_a_duplicate() -> None:
    error = _error(HEADER + 'devices = [{ id = "u1", kind = "pump" }]\n')

    assert error.message == "duplicate id 'u1': already used by unit 'u1'"


@pytest.mark.parametrize("bad_id", ["B 1", "a/b", "Pump1", "-p", "p+", "a#b", "x" * 65, "a,b"])
def test_invalid_device_id_names_its_line(bad_id: str) -> None:
    error = _error(
        HEADER + "devices = [\n"
        '  { id = "p1", kind = "pump" },\n'
        f'  {{ id = "{bad_id}", kind = "pump" }},\n'
        "]\n"
    )

    assert error.line == 11
    assert f"id {bad_id!r} is not valid" in error.message


def test_invalid_building_id_names_its_line() -> None:
    error = _error('[site]\nid = "s1"\n\n[[buildings]]\nname = "B"\nid = "B 1"\n')

    assert error.line == 6
    assert "building #1 id 'B 1' is not valid" in error.message


def test_invalid_site_id_names_its_line() -> None:
    error = _error('[site]\nname = "S"\nid = "a/b"\n')

    assert error.line == 3
    assert "[site] id 'a/b' is not valid" in error.message


def test_longest_valid_id_is_accepted() -> None:
    site = parse_site(HEADER + f'devices = [{{ id = "{"p" * 64}", kind = "pump" }}]\n')

    assert site.device_ids("pump") == ("p" * 64,)


def test_unknown_key_in_a_device_names_the_device_line() -> None:
    error = _error(
        HEADER + "devices = [\n"
        '  { id = "p1", kind = "pump" },\n'
        '  { id = "p2", kind = "pump", colour = "red" },\n'
        "]\n"
    )

    assert error.line == 11
    assert "device 'p2' has unknown key(s) 'colour'" in error.message
    assert "allowed: id, kind, name" in error.message


def test_unknown_key_in_a_unit_names_the_unit_line() -> None:
    error = _error(HEADER + 'floors = 30\ndevices = [{ id = "p1", kind = "pump" }]\n')

    assert error.line == 8
    assert "unit 'u1' has unknown key(s) 'floors'" in error.message


def test_unknown_key_in_a_building_names_the_building_line() -> None:
    error = _error(
        '[site]\nid = "s1"\n\n[[buildings]]\nid = "b1"\naddress = "1 Main St"\n'
        '\n[[buildings.units]]\nid = "u1"\n'
    )

    assert error.line == 5
    assert "building 'b1' has unknown key(s) 'address'" in error.message


def test_device_entry_that_is_not_a_table_names_the_unit_line() -> None:
    error = _error(HEADER + 'devices = [\n  "p1",\n]\n')

    assert error.line == 8
    assert "a device of unit 'u1' must be a table, got str" in error.message


def test_device_without_a_kind() -> None:
    error = _error(HEADER + 'devices = [\n  { id = "p1" },\n]\n')

    assert error.line == 10
    assert "device 'p1' is missing 'kind'" in error.message


def test_missing_file() -> None:
    path = Path("/nonexistent/site-does-not-exist.toml")

    with pytest.raises(SiteFileError) as caught:
        load_site(path)

    assert caught.value.line is None
    assert caught.value.path == path
    assert caught.value.message == "no such file"
    assert str(caught.value) == f"{path}: no such file"


def test_load_site_names_the_file_in_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + 'devices = [{ id = "p1", kind = "boiler" }]\n', encoding="utf-8")

    with pytest.raises(SiteFileError) as caught:
        load_site(path)

    assert caught.value.path == path
    assert caught.value.line == 9
    assert str(caught.value).startswith(f"{path}:9: ")


def test_load_site_reads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(HEADER + 'devices = [{ id = "p1", kind = "pump" }]\n', encoding="utf-8")

    site: Site = load_site(path)

    assert site.device_ids("pump") == ("p1",)
