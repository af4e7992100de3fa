"""Run `facility` with every thread under cProfile on its own thread's CPU clock.

    FACILITY_PROFILE_DIR=/tmp/prof python bench/thread_profile.py gateway ...

A process-wide profile (py-spy, or cProfile on the main thread) mixes the threads or sees only
one; the gateway's work is split over its loop, rules, commit, timer and MQTT threads. Each
thread gets a `cProfile.Profile(time.thread_time)`, so its figures are that thread's CPU, not
wall time spent waiting. At exit every profile is written to `<dir>/<thread name>.prof`
(read with `python -m pstats`, or `bench/thread_profile.py --show DIR`).
"""

from __future__ import annotations

import atexit
import cProfile
import marshal
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_profiles: list[tuple[str, cProfile.Profile]] = []
_lock = threading.Lock()


def _profiled_run(
    original: Callable[[threading.Thread], None],
) -> Callable[[threading.Thread], None]:
    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append((self.name, profile))
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    return run


def _dump(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.prof"):
        stale.unlink()
    with _lock:
        profiles = list(_profiles)
    for number, (name, profile) in enumerate(profiles):
        profile.snapshot_stats()  # also for threads still running: a snapshot, not a stop
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        with (directory / f"{number:02d}-{safe}.prof").open("wb") as out:
            marshal.dump(profile.stats, out)


def show(directory: Path, top: int) -> None:
    """Each thread's CPU and its most expensive functions (cumulative)."""
    for path in sorted(directory.glob("*.prof")):
        stats = pstats.Stats(str(path))
        total = stats.total_tt  # type: ignore[attr-defined]
        if total < 0.05:
            continue
        print(f"=== {path.stem}: {total:.2f} CPU s")
        stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--show":
        show(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 25)
        return
    directory = Path(os.environ.get("FACILITY_PROFILE_DIR", "thread-profiles"))
    threading.Thread.run = _profiled_run(threading.Thread.run)  # type: ignore[method-assign, assignment]
    main_profile = cProfile.Profile(time.thread_time)
    _profiles.append(("main", main_profile))
    atexit.register(_dump, directory)
    from runtime.cli import main as facility  # noqa: PLC0415

    main_profile.enable()
    try:
        code = facility(sys.argv[1:])
    finally:
        main_profile.disable()
    sys.exit(code)


if __name__ == "__main__":
    main()
