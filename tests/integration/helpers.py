"""Helpers for tests that run the `facility` command as real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
_LOGS: dict[int, Path] = {}
"""The log of each process started here, by PID: printed when the process must be killed."""


def facility_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtime.cli", *args]


def start_facility(args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            facility_argv(*args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    _LOGS[process.pid] = log_path
    return process


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int:
    """Stop a process this test started, by its PID; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
            log_path = _LOGS.get(process.pid)
            if log_path is not None:  # shown with the failure: the stacks the stop left there
                print(f"--- {log_path} (killed after {timeout_s:.0f} s) ---")
                print(log_path.read_text(errors="replace")[-20_000:])
    return process.returncode


def run_simulation(args: Sequence[str], timeout_s: float = 120.0) -> dict[str, object]:
    """Run `facility simulate` to its end; its JSON summary (the last line it prints)."""
    done = subprocess.run(
        facility_argv("simulate", *args),
        cwd=ROOT,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    summary: dict[str, object] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return summary


def wait_for(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float, what: str
) -> T:
    """Poll `probe` until `done(value)`; fail with the last value after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:g} s waiting for {what}; last: {value!r}"
            )
        time.sleep(0.25)
        value = probe()
    return value
