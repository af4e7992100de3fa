"""The order test files are handed to the workers: the longest first.

`make test` runs two workers with `--dist loadfile`: each takes a whole file at a time, in
collection order. Collected alphabetically, a file of a minute or more could start last while
the other worker had nothing left, so the run ended long after half its work. Handing out the
longest files first (the longest-processing-time rule) leaves the short ones to even out the
end. Seconds per file are those of a measured run, kept in `tests/file_seconds.json`; a file
not in it (a new one) is taken as short and keeps its place among the short ones. The
Makefile passes `--no-loadscope-reorder`: xdist otherwise reorders files by how many tests
they hold, which puts the long integration files (few tests each) last.
`pytest --record-file-seconds` writes the seconds of the files it ran into it (the others'
stay as they were).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

SECONDS_FILE = Path(__file__).with_name("file_seconds.json")
OPTION = "--record-file-seconds"


def load(path: Path = SECONDS_FILE) -> dict[str, float]:
    """File path (as pytest names it, from the root) -> seconds; empty when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> list[pytest.Item]:
    """The items with whole files ordered by their seconds, longest first; a file's own
    tests keep their order, and files of equal (or unknown) seconds keep theirs."""
    first_at: dict[str, int] = {}
    for index, item in enumerate(items):
        first_at.setdefault(item.nodeid.split("::", 1)[0], index)

    def key(item: pytest.Item) -> tuple[float, int]:
        path = item.nodeid.split("::", 1)[0]
        return (-seconds.get(path, 0.0), first_at[path])

    return sorted(items, key=key)


class Recorder:
    """Adds up each file's setup, call and teardown seconds (under xdist, in the controller,
    from every worker's reports) and writes them at the end of the run over those recorded
    before: a run of some files leaves the others' seconds."""

    def __init__(self, path: Path = SECONDS_FILE) -> None:
        self.path = path
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid.split("::", 1)[0]] += report.duration

    @pytest.hookimpl
    def pytest_sessionfinish(self) -> None:
        merged = {**load(self.path), **self.seconds}
        ordered = sorted(merged.items(), key=lambda kv: -kv[1])
        rounded = {path: round(s, 1) for path, s in ordered}
        self.path.write_text(json.dumps(rounded, indent=1) + "\n", encoding="utf-8")
