"""A `facility gateway` process for reliability tests, with its metrics endpoint."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.integration.helpers import start_facility, stop_process
from tests.local_http import LOCAL
from tests.services import free_port

PORT_IN_USE = ("the port is in use", "Address already in use")
"""What the gateway's log says when its metrics port was taken (checked at start, or at bind)."""
PORT_RETRIES = 3
START_TIMEOUT_S = 30.0


class GatewayProcess:
    def __init__(
        self,
        tmp_path: Path,
        site_file: Path,
        mqtt_port: int,
        influx_port: int,
        database: str,
        *extra_args: str,
        store_args: tuple[str, ...] | None = None,
        start: bool = True,
    ) -> None:
        """`store_args`: the store's flags (default: InfluxDB 1.x on `influx_port`);
        `start=False`: not started yet (see `start_together`)."""
        self.tmp_path = tmp_path
        self.metrics_port = free_port()
        self.dead_letters = tmp_path / "dead-letters.jsonl"
        self.spool = tmp_path / "spool"
        self.log = tmp_path / "gateway.log"
        self.args = [
            "gateway",
            "--site", str(site_file),
            "--mqtt-port", str(mqtt_port),
            "--mqtt-client-id", "reliability-gateway",
            *(store_args if store_args is not None else (
                "--store", "influx-v1",
                "--influx-url", f"http://127.0.0.1:{influx_port}",
                "--influx-db", database,
            )),
            "--db-url", f"sqlite:///{tmp_path / 'facility.sqlite3'}",
            "--dead-letters", str(self.dead_letters),
            "--spool-dir", str(self.spool),
            "--rules-state", str(tmp_path / "rules-state.npz"),
            "--metrics-port", str(self.metrics_port),
            *extra_args,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        if start:
            self.start()

    def start(self) -> None:
        self.spawn()
        self.wait_started()

    def spawn(self) -> None:
        self.process = start_facility(self.args, self.log)

    def wait_started(self) -> None:
        """Wait for /health to say connected; on a failure, say why with the gateway's log.
        A gateway that exits fails at once; one that lost its metrics port to another process
        between `free_port` and its own bind (a race on a busy machine) starts again on a new
        port."""
        for _ in range(PORT_RETRIES):
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.running and time.monotonic() < deadline:
                health = self.health()
                if health is not None and health.get("mqtt_connected") is True:
                    return
                time.sleep(0.25)
            if self.running:
                raise AssertionError(
                    f"the gateway did not connect within {START_TIMEOUT_S:g} s; "
                    f"its log ends:\n{self.log_tail()}"
                )
            if not any(words in self.log_tail() for words in PORT_IN_USE):
                break
            self.metrics_port = free_port()
            self.args[self.args.index("--metrics-port") + 1] = str(self.metrics_port)
            self.spawn()
        assert self.process is not None
        raise AssertionError(
            f"the gateway exited with {self.process.returncode} before connecting; "
            f"its log ends:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        return stop_process(self.process)

    def health(self) -> dict[str, object] | None:
        try:
            response = LOCAL.get(f"http://127.0.0.1:{self.metrics_port}/health", timeout=2)
            body: dict[str, object] = response.json()
        except (httpx.HTTPError, ValueError):  # not up yet, or another process on the port
            return None
        return body

    def metrics(self) -> dict[str, float]:
        """Samples by name with labels, e.g. 'facility_rejected_total{reason="bad_seq"}'."""
        text = LOCAL.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        samples = {}
        for line in text.splitlines():
            match = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
            if match:
                samples[match[1]] = float(match[2])
        return samples

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'facility.sqlite3'}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_together(gateways: Sequence[GatewayProcess]) -> None:
    """Spawn every gateway, then wait for each: their start-ups (seconds of imports before
    /health answers) overlap instead of adding up. On a failure, stops what it spawned."""
    try:
        for gateway in gateways:
            gateway.spawn()
        for gateway in gateways:
            gateway.wait_started()
    except BaseException:
        for gateway in gateways:
            if gateway.running:
                gateway.stop()
        raise
