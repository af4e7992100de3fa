"""The dashboard under test: the real app on a free loopback port, fed by the demo site's simulator.

The simulator's telemetry takes the gateway's path without MQTT (decode, write the time series,
run the rules, file work orders) into stores in the test's directory, tick by tick, so the test
decides when the injected fault begins. The app's clock is the simulated time of the last
tick fed: while the test waits, no device goes stale and no SLA runs out.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from alerts.engine import RuleEngine
from alerts.rules import default_rule_set
from alerts.sink import AlertsSink
from alerts.store import WorkOrderStore
from api.app import create_app
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from api.settings import ApiSettings
from db.engine import make_engine
from facility.site import Site
from gateway.decoder import Decoder, Message
from ingest.interface import TimeSeriesWriter
from ingest.registry import open_history, open_writer
from ingest.settings import StoreSettings
from simulators.injection import parse_injection
from simulators.runner import FleetSimulator, SimulationSettings
from tests.fakes import FakeClock

START_TIMEOUT_S = 30.0
CSP_VIOLATION = "Content Security Policy"
"""What Chromium's console says when the page's policy blocks something."""


def csp_violations(messages: Iterable[str]) -> list[str]:
    """The console messages that report a Content-Security-Policy violation."""
    return [m for m in messages if CSP_VIOLATION in m]


TICKS_PER_BATCH = 10
"""Simulated seconds decoded as one batch, as a gateway batches a second's worth of messages."""


class TelemetryFeed:
    """The site's simulated devices at 1 Hz, fed into the stores up to a simulated offset."""

    def __init__(
        self,
        site: Site,
        store: WorkOrderStore,
        series: TimeSeriesWriter,
        clock: FakeClock,
        *,
        start_ms: int,
        inject: list[str],
    ) -> None:
        self.start_ms = start_ms
        self.simulator = FleetSimulator(
            site,
            SimulationSettings(rate_hz=1.0, start_ms=start_ms),
            [parse_injection(text, site) for text in inject],
            now_ms=start_ms,
        )
        self.decoder = Decoder(site)
        self.sink = AlertsSink(site, RuleEngine.from_rule_set(site, default_rule_set()), store)
        self.series = series
        self.clock = clock
        self.next_tick = 0

    def run_until(self, offset_s: int) -> None:
        """Feed every tick up to `offset_s` simulated seconds after the start."""
        while self.next_tick <= offset_s:
            last = min(self.next_tick + TICKS_PER_BATCH, offset_s + 1)
            messages = [
                Message(topic, payload)
                for number in range(self.next_tick, last)
                for topic, payload in self.simulator.tick(number)
            ]
            now = self.start_ms + (last - 1) * 1000
            result = self.decoder.decode(messages, now_ms=now)
            assert result.rejections == [], result.rejections[:3]
            self.series.write(result.batch)
            self.sink.handle(result.batch)
            self.clock.now = now
            self.next_tick = last


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


class DashboardServer:
    """create_app() served by uvicorn in a thread of this process, on 127.0.0.1:<free port>."""

    def __init__(
        self,
        site: Site,
        workdir: Path,
        *,
        fault: str,
        fault_at_s: int,
        more_faults: Sequence[str] = (),
        token_ttl_s: int = 900,
        login_attempts_per_client: int | None = None,
        time_series: StoreSettings | None = None,
    ) -> None:
        """`more_faults`: other injections, each with its own start (`NAME:TARGET@START+DURATION`).
        `time_series`: the store the telemetry is written to and the charts read from
        (through `ingest.registry`); by default a SQLite file in `workdir`."""
        self.site = site
        self.fault_at_s = fault_at_s
        self.store = WorkOrderStore(make_engine(f"sqlite:///{workdir / 'facility.sqlite3'}"))
        self.store.migrate()
        time_series = time_series or StoreSettings(sqlite_path=workdir / "telemetry.sqlite3")
        self.series = open_writer(site, time_series)
        self.history = open_history(site, time_series)
        # The simulated time runs up to about now, so the browser's own clock agrees with it.
        start_ms = time.time_ns() // 1_000_000 - (fault_at_s + 30) * 1000
        self.clock = FakeClock(start_ms)
        self.feed = TelemetryFeed(
            site,
            self.store,
            self.series,
            self.clock,
            start_ms=start_ms,
            inject=[f"{fault}@{fault_at_s}+600", *more_faults],
        )
        settings = ApiSettings(token_ttl_s=token_ttl_s, user_cache_s=0)
        if login_attempts_per_client is not None:
            settings = replace(settings, login_attempts_per_client=login_attempts_per_client)
        self.app = create_app(
            site=site,
            store=self.store,
            clock_ms=self.clock,
            history=self.history,
            passwords=Passwords(FAST_FOR_TESTS),
            # Users re-read on every request: a disabled user is refused at once.
            settings=settings,
        )
        # Bound here and handed to uvicorn, so no other process can take the port in between.
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="dashboard", daemon=True
        )

    def add_user(self, username: str, role: str, **extra: object) -> Login:
        password = f"{username}-password-123"
        self.app.state.context.users.add(username, password, role, **extra)
        return Login(username, password)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
        self.series.close()
        self.history.close()
        self.store.engine.dispose()
