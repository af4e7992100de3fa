"""One periodic worker for the background jobs of every package (timers, pruning, leases).

Each job used to be its own hand-written `while not stop.wait(...)` thread; this keeps the
stop, the naming and the error handling in one place: a job that raises is logged (once per
distinct error) and counted, and the worker goes on at its next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicWorker:
    """Runs `job` every `interval_s` on a daemon thread of its own until `stop()`."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        job: Callable[[], object],
        *,
        on_stop: Callable[[], object] | None = None,
        run_at_start: bool = False,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval must be more than 0 s, not {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self.job = job
        self.on_stop = on_stop
        """Runs once on the worker's thread after its last tick (a final checkpoint, say)."""
        self.run_at_start = run_at_start
        self.failures = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def tick(self) -> None:
        """One run of the job, errors contained (also what tests call)."""
        try:
            self.job()
        except Exception as exc:
            self.failures += 1
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:
                log.exception("%s failed; trying again in %.3g s", self.name, self.interval_s)
            self.last_error = error
        else:
            self.last_error = ""

    def _run(self) -> None:
        if self.run_at_start:
            self.tick()
        while not self._stop.wait(self.interval_s):
            self.tick()
        if self.on_stop is not None:
            try:
                self.on_stop()
            except Exception:
                log.exception("%s: its last run at stop failed", self.name)
