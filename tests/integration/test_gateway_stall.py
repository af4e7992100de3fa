"""A stalled gateway is behind, not looking at a silent site (issue "Outages end fast", 5).

Real services: the Mosquitto the fixture started, a `facility gateway` process, and
`facility simulate` publishing the demo site's 128 devices in real time. The gateway is
stopped for 60 s (SIGSTOP of the PID this test started, then SIGCONT) while the devices go on
publishing into its persistent session; once it has caught up, nothing was raised for the
stall — no site incident, no offline device — while one elevator that really stopped
publishing (the control, silent past its 60 s heartbeat) has its offline fault.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.store import WorkOrderStore
from db.engine import make_engine
from tests.conftest import DEMO_SITE
from tests.integration.gateway_process import GatewayProcess
from tests.integration.helpers import start_facility, stop_process, wait_for
from tests.services import ServiceProcess

pytestmark = pytest.mark.integration

CONTROL = "b02-u1-el1"
"""The elevator that stops publishing 5 s into the run, for good (heartbeat 60 s)."""
STALL_S = 60


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: ServiceProcess) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path, DEMO_SITE, mosquitto.port, 0, "",
        store_args=("--store", "sqlite", "--sqlite-path", str(tmp_path / "telemetry.sqlite3")),
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            os.kill(process.process.pid, signal.SIGCONT)  # never leave it stopped
            process.stop()


@pytest.fixture
def publisher(
    tmp_path: Path, mosquitto: ServiceProcess, gateway: GatewayProcess
) -> Iterator[subprocess.Popen[bytes]]:
    """The demo site in real time (one reading a second per device), the control elevator
    silent from 5 s on; stopped by its PID at the end."""
    process = start_facility(
        ["simulate", "--site", str(DEMO_SITE), "--mqtt-port", str(mosquitto.port),
         "--duration", "600", "--inject", f"device-silent:{CONTROL}@5", "--no-live"],
        tmp_path / "simulate.log",
    )  # fmt: skip
    try:
        yield process
    finally:
        stop_process(process)


def faults(db_url: str) -> list[tuple[str, str]]:
    """(rule, device) of every fault episode filed and of every work order."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            episodes = connection.execute(
                sa.text("SELECT rule_id, device_id FROM fault_episodes ORDER BY id")
            ).all()
        orders = WorkOrderStore(engine).list_work_orders()
    finally:
        engine.dispose()
    found = {(str(r), str(d)) for r, d in episodes}
    found |= {(str(o.rule_id), str(o.device_id)) for o in orders}
    return sorted(found)


def test_a_gateway_stalled_60s_raises_nothing_but_the_really_silent_device(
    gateway: GatewayProcess, publisher: subprocess.Popen[bytes]
) -> None:
    assert gateway.process is not None
    wait_for(lambda: gateway.metrics().get("facility_readings_accepted_total", 0),
             lambda n: n > 128 * 8, timeout_s=60,
             what="the gateway to take the live stream")  # fmt: skip
    assert faults(gateway.db_url) == []

    os.kill(gateway.process.pid, signal.SIGSTOP)  # the devices keep publishing
    time.sleep(STALL_S)
    assert publisher.poll() is None, "the publisher stopped during the stall"
    os.kill(gateway.process.pid, signal.SIGCONT)

    def caught_up() -> dict[str, float]:
        m = gateway.metrics()
        return {k: m.get(k, -1.0) for k in ("facility_rules_arrival_lag_seconds",
                                            "facility_rules_silence_behind_seconds")}  # fmt: skip

    wait_for(caught_up, lambda m: 0 <= max(m.values()) < 5, timeout_s=120,
             what="the gateway to catch up with the stream")  # fmt: skip
    # the control's offline fault shows the timer judges silence again after the stall
    wait_for(lambda: faults(gateway.db_url), bool, timeout_s=60,
             what="the control elevator's offline fault")  # fmt: skip
    time.sleep(5)  # a few more ticks of the caught-up timer
    found = faults(gateway.db_url)
    assert found == [("device.offline", CONTROL)], f"{found}\n{gateway.log_tail()}"
    assert gateway.running
