"""Recovery from store outages on real Mosquitto and InfluxDB: a backlog of several spool
segments drains while the live stream flows, a full spool holds acks instead of dropping, and a
hung (SIGSTOPped) InfluxDB shows as degraded while it is stopped.

Each test runs `facility gateway` as a process against services its fixtures started, publishes
a known stream at QoS 1, and checks what InfluxDB holds with InfluxQL counts.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facility.site import Site
from tests.integration.gateway_process import GatewayProcess
from tests.integration.helpers import wait_for
from tests.integration.load import Publisher, stream
from tests.integration.test_reliability import DATABASE, start_ms_for, wait_for_points
from tests.services import ServiceProcess

pytestmark = pytest.mark.integration

StartGateway = Callable[..., GatewayProcess]


@pytest.fixture
def start_gateway(
    tmp_path: Path, site_file: Path, mosquitto: ServiceProcess, influxd: ServiceProcess
) -> Iterator[StartGateway]:
    """Starts `facility gateway` with extra flags; stops what it started."""
    started: list[GatewayProcess] = []

    def start(*extra: str) -> GatewayProcess:
        process = GatewayProcess(
            tmp_path, site_file, mosquitto.port, influxd.port, DATABASE, *extra
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.running:
                process.stop()


def store_down(health: dict[str, object] | None) -> bool:
    if health is None or health["status"] != "degraded":
        return False
    store = health["store"]
    return isinstance(store, dict) and store["up"] is False


def test_an_outage_over_several_segments_drains_while_the_live_stream_flows(
    start_gateway: StartGateway, mosquitto: ServiceProcess, influxd: ServiceProcess,
    load_site: Site,
) -> None:  # fmt: skip
    gateway = start_gateway("--spool-segment-bytes", "16384")
    data = stream(load_site, 300, 10, start_ms_for(300))  # 30,000 readings, 3,000 messages
    publisher = Publisher(mosquitto.port)
    try:
        # ~20 s of stream, 1,500 readings/s: the store is back ~6 s in, so ~14 s of live
        # stream flow while the backlog drains (the assert below checks it still flows)
        publisher.start(data.messages, per_second=150)
        wait_for(lambda: publisher.published, lambda n: n >= 300, timeout_s=30, what="publishing")
        influxd.kill()
        wait_for(gateway.health, store_down, timeout_s=10, what="/health to report the store down")
        wait_for(lambda: len(list(gateway.spool.glob("*.seg"))), lambda n: n >= 3,
                 timeout_s=60, what="the outage to fill several spool segments")  # fmt: skip
        influxd.restart()
        published_at_restart = publisher.published
        assert published_at_restart < len(data.messages)  # the live stream is still flowing
        publisher.join()
    finally:
        publisher.close()
    wait_for_points(influxd, data.readings_by_kind)
    wait_for(lambda: list(gateway.spool.glob("*.seg")), lambda left: left == [], timeout_s=30,
             what="the spool to drain")  # fmt: skip
    metrics = gateway.metrics()
    assert metrics["facility_readings_spooled_total"] > 0
    assert metrics["facility_readings_drained_total"] == metrics["facility_readings_spooled_total"]
    assert metrics["facility_readings_dropped_total"] == 0
    assert metrics["facility_spool_torn_records_total"] == 0
    assert gateway.running


def test_a_full_spool_holds_acks_and_loses_nothing(
    start_gateway: StartGateway, mosquitto: ServiceProcess, influxd: ServiceProcess,
    load_site: Site,
) -> None:  # fmt: skip
    gateway = start_gateway("--spool-max-bytes", "65536", "--spool-segment-bytes", "16384")
    data = stream(load_site, 300, 10, start_ms_for(400))  # 30,000 readings: ~10x the cap
    influxd.kill()
    wait_for(gateway.health, store_down, timeout_s=10, what="/health to report the store down")
    publisher = Publisher(mosquitto.port)
    try:
        publisher.publish_all(data.messages)  # the broker takes them all; the gateway cannot
    finally:
        publisher.close()
    full = wait_for(gateway.metrics,
                    lambda m: m.get("facility_backpressure_retries_total", 0) > 0, timeout_s=60,
                    what="the spool to fill and the gateway to hold acks")  # fmt: skip
    assert full["facility_spool_full"] == 1
    assert full["facility_readings_dropped_total"] == 0
    assert full["facility_spool_bytes"] <= 65536
    influxd.restart()
    wait_for_points(influxd, data.readings_by_kind)  # exactly: nothing dropped, nothing twice
    wait_for(lambda: list(gateway.spool.glob("*.seg")), lambda left: left == [], timeout_s=30,
             what="the spool to drain")  # fmt: skip
    metrics = gateway.metrics()
    assert metrics["facility_readings_dropped_total"] == 0
    assert metrics["facility_spool_backpressure_seconds_total"] > 0
    assert metrics["facility_spool_full"] == 0
    assert metrics["facility_messages_received_total"] >= len(data.messages)
    # Acks resumed: a restarted gateway is redelivered nothing but what comes after.
    gateway.stop()
    gateway.start()
    more = stream(load_site, 2, 1, start_ms_for(400) + 300_000, first_seq=301)
    publisher = Publisher(mosquitto.port, client_id="after-backpressure")
    try:
        publisher.publish_all(more.messages)
    finally:
        publisher.close()
    wait_for_points(influxd, data.readings_by_kind + more.readings_by_kind)
    after = wait_for(gateway.metrics,
                     lambda m: m.get("facility_messages_received_total") == len(more.messages),
                     timeout_s=30, what="the new messages to be counted")  # fmt: skip
    assert after["facility_messages_received_total"] == len(more.messages)


def test_a_hung_store_is_degraded_while_it_is_stopped(
    start_gateway: StartGateway, mosquitto: ServiceProcess, influxd: ServiceProcess,
    load_site: Site,
) -> None:  # fmt: skip
    gateway = start_gateway()
    data = stream(load_site, 150, 10, start_ms_for(150))
    publisher = Publisher(mosquitto.port)
    try:
        publisher.start(data.messages, per_second=150)  # ~10 s: the hang comes at ~2 s
        wait_for(lambda: publisher.published, lambda n: n >= 300, timeout_s=30, what="publishing")
        os.kill(influxd.pid, signal.SIGSTOP)  # the influxd this test's fixture started
        try:
            degraded = wait_for(gateway.health, store_down, timeout_s=5,
                                what="/health to report the hung store")  # fmt: skip
            assert degraded is not None
            assert influxd.process.poll() is None  # observed while it was stopped
        finally:
            os.kill(influxd.pid, signal.SIGCONT)
        publisher.join()
    finally:
        publisher.close()
    wait_for_points(influxd, data.readings_by_kind)
    wait_for(gateway.health, lambda h: h is not None and h["status"] == "ok", timeout_s=30,
             what="the store to be healthy again")  # fmt: skip
    assert gateway.metrics()["facility_readings_dropped_total"] == 0
