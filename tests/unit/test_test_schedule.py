"""The order test files are handed to the workers (tests/schedule.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from tests import schedule


@dataclass
class _Item:
    nodeid: str


def _ids(nodeids: list[str], seconds: dict[str, float]) -> list[str]:
    items = cast("list[pytest.Item]", [_Item(n) for n in nodeids])
    return [item.nodeid for item in schedule.longest_first(items, seconds)]


def test_the_longest_files_go_first_each_with_its_tests_in_order() -> None:
    nodeids = ["a.py::one", "a.py::two", "b.py::one", "c.py::one", "c.py::two", "d.py::one"]
    seconds = {"b.py": 5.0, "c.py": 60.0, "a.py": 1.0}
    assert _ids(nodeids, seconds) == [
        "c.py::one", "c.py::two", "b.py::one", "a.py::one", "a.py::two", "d.py::one",
    ]  # fmt: skip


def test_files_not_measured_keep_their_order_after_the_measured_ones() -> None:
    nodeids = ["new.py::x", "a.py::one", "other.py::y[1]", "other.py::y[2]"]
    assert _ids(nodeids, {"a.py": 2.0}) == [
        "a.py::one", "new.py::x", "other.py::y[1]", "other.py::y[2]",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text", ["", "not json", "[1, 2]", '{"a.py": "slow", "b.py": 3}', '{"a.py": null}']
)
def test_a_missing_or_broken_seconds_file_orders_nothing_it_cannot_read(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "file_seconds.json"
    path.write_text(text)
    assert schedule.load(path) == ({"b.py": 3.0} if "b.py" in text else {})
    assert schedule.load(tmp_path / "absent.json") == {}


def test_the_checked_in_seconds_name_files_that_exist() -> None:
    """A renamed or removed file left in the seconds file would order nothing: rewrite it
    with `pytest --record-file-seconds`."""
    root = schedule.SECONDS_FILE.parent.parent
    seconds = schedule.load()
    assert seconds, "tests/file_seconds.json is missing or empty"
    assert [path for path in seconds if not (root / path).is_file()] == []


@dataclass
class _Report:
    nodeid: str
    duration: float


def test_a_recorded_run_adds_up_its_files_and_leaves_the_others(tmp_path: Path) -> None:
    path = tmp_path / "file_seconds.json"
    path.write_text('{"kept.py": 9.0, "a.py": 100.0}')
    recorder = schedule.Recorder(path)
    for nodeid, duration in [("a.py::one", 1.25), ("a.py::one", 0.5), ("b.py::x[1]", 20.0)]:
        recorder.pytest_runtest_logreport(cast("pytest.TestReport", _Report(nodeid, duration)))
    recorder.pytest_sessionfinish()
    assert list(schedule.load(path).items()) == [("b.py", 20.0), ("kept.py", 9.0), ("a.py", 1.8)]
