"""A live terminal view of a running simulation (rich): devices, rates, active faults.

Only for people at a terminal: `facility simulate` shows it on stderr when stderr is a TTY
(or with `--live`), so stdout keeps only the JSON summary; never in tests. It reads the
runner's counters from its own thread twice a second; the runner does not wait for it.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from simulators.runner import FleetSimulator

REFRESH_S = 0.5


class LiveView:
    def __init__(self, simulator: FleetSimulator) -> None:
        self.simulator = simulator
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulator-live", daemon=True)
        self._last = (time.monotonic(), 0, 0)
        self._rates = (0.0, 0.0)

    def __enter__(self) -> LiveView:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def render(self) -> Group:
        sim, s = self.simulator, self.simulator.summary
        now = time.monotonic()
        then, readings, messages = self._last
        if now - then >= REFRESH_S:
            span = now - then
            self._rates = ((s.readings - readings) / span, (s.messages - messages) / span)
            self._last = (now, s.readings, s.messages)
        stats = Table.grid(padding=(0, 2))
        stats.add_row("site", f"{sim.site.id} ({len(sim.site.devices):,} devices)")
        stats.add_row(
            "simulated time",
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.end_ms / 1000)) + " UTC",
        )
        stats.add_row("readings/s", f"{self._rates[0]:,.0f}")
        stats.add_row("messages/s", f"{self._rates[1]:,.0f}")
        stats.add_row("published", f"{s.readings:,} readings in {s.messages:,} messages")
        stats.add_row("bad messages", f"{s.bad_messages:,}")
        stats.add_row("broker link", "up" if sim.link_up else "DOWN (buffering)")
        kinds = Table("kind", "devices", "readings", title="devices")
        for kind in sim.kinds:
            kinds.add_row(kind, f"{len(sim.site.by_kind[kind]):,}", f"{s.readings_by_kind[kind]:,}")
        faults = Table("active fault", "devices", title="faults")
        for label, count in sim.active_fault_rows():
            faults.add_row(label, f"{count:,}")
        return Group(stats, kinds, faults)

    def _run(self) -> None:
        console = Console(stderr=True)
        with Live(self.render(), console=console, refresh_per_second=1 / REFRESH_S) as live:
            while not self._stop.wait(REFRESH_S):
                live.update(self.render())
            live.update(self.render())
