"""Never lose a reading, never stop on bad input: the gateway on real Mosquitto and InfluxDB.

Each test runs `facility gateway` as a process against services the fixtures started, publishes
a known stream at QoS 1, and checks what InfluxDB holds with InfluxQL counts.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from facility.clock import now_ms
from facility.site import Site
from tests.integration.gateway_process import GatewayProcess, start_together
from tests.integration.helpers import wait_for
from tests.integration.load import Message, Publisher, Stream, stream
from tests.services import ServiceProcess, influxql

pytestmark = pytest.mark.integration

DATABASE = "reliability"
ALWAYS = {"elevator": "running", "lighting": "commanded_on", "gate": "door_open", "pump": "running"}


PACKET_PATHS = ("fast", "plain")


@pytest.fixture(params=PACKET_PATHS)
def gateway(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    site_file: Path,
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
) -> Iterator[GatewayProcess]:
    """The gateway on each MQTT packet path: the fast one and plain paho (the fallback)."""
    path = request.param
    process = GatewayProcess(
        tmp_path, site_file, mosquitto.port, influxd.port, DATABASE, "--mqtt-packet-path", path
    )
    try:
        assert f"takes the {path} packet path" in process.log.read_text()
        yield process
    finally:
        if process.running:
            process.stop()


def counts(influxd: ServiceProcess, database: str = DATABASE) -> Counter[str]:
    found: Counter[str] = Counter()
    for kind, field in ALWAYS.items():
        rows = influxql(influxd.port, database, f'SELECT count("{field}") FROM "{kind}"')
        if rows:
            found[kind] = int(rows[0][1])  # type: ignore[call-overload]
    return found


def wait_for_points(
    influxd: ServiceProcess,
    expected: Counter[str],
    timeout_s: float = 120,
    database: str = DATABASE,
) -> None:
    wait_for(lambda: counts(influxd, database), lambda c: c == expected, timeout_s=timeout_s,
             what=f"{sum(expected.values())} points in InfluxDB {database}")  # fmt: skip


def start_ms_for(readings_per_device: int) -> int:
    return now_ms() - (readings_per_device + 60) * 1000


def test_100k_readings_at_qos1_are_exactly_100k_points(
    gateway: GatewayProcess, mosquitto: ServiceProcess, influxd: ServiceProcess, load_site: Site
) -> None:
    start = start_ms_for(1000)
    singles = stream(load_site, 200, 1, start)  # 20,000 one-reading messages
    batched = stream(load_site, 800, 10, start + 200_000, first_seq=201)  # 8,000 of 10
    assert singles.readings + batched.readings == 100_000
    publisher = Publisher(mosquitto.port)
    try:
        publisher.publish_all(singles.messages + batched.messages)
    finally:
        publisher.close()
    wait_for_points(influxd, singles.readings_by_kind + batched.readings_by_kind)
    metrics = gateway.metrics()
    assert metrics["facility_readings_accepted_total"] == 100_000
    assert metrics["facility_sequence_gaps_total"] == 0
    assert metrics["facility_rules_quarantined"] == 0  # the rules' metrics are served too
    health = gateway.health()
    assert health is not None
    assert health["status"] == "ok"
    rules = health["rules"]
    assert isinstance(rules, dict)
    assert rules["quarantined"] == []
    assert rules["unfiled_faults"] == 0
    assert gateway.running


@pytest.fixture
def gateway_per_path(
    tmp_path: Path, site_file: Path, mosquitto: ServiceProcess, influxd: ServiceProcess
) -> Iterator[dict[str, GatewayProcess]]:
    """A gateway on each MQTT packet path at once, each with its own client id (so each takes
    the whole stream), spool and InfluxDB database (`reliability_<path>`): one store outage
    is lived through on both paths."""
    started: dict[str, GatewayProcess] = {}
    for path in PACKET_PATHS:
        work = tmp_path / path
        work.mkdir()
        started[path] = GatewayProcess(
            work, site_file, mosquitto.port, influxd.port, f"{DATABASE}_{path}",
            "--mqtt-packet-path", path, "--mqtt-client-id", f"reliability-{path}", start=False,
        )  # fmt: skip
    start_together(list(started.values()))
    try:
        for path, process in started.items():
            assert f"takes the {path} packet path" in process.log.read_text()
        yield started
    finally:
        for process in started.values():
            if process.running:
                process.stop()


def test_influxd_down_for_30s_mid_stream_loses_nothing(
    gateway_per_path: dict[str, GatewayProcess],
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    load_site: Site,
) -> None:
    """On both packet paths in one outage (two gateways side by side, the same stream)."""
    gateways = gateway_per_path
    data = stream(load_site, 600, 10, start_ms_for(600))  # 60,000 readings, 6,000 messages
    publisher = Publisher(mosquitto.port)
    try:
        publisher.start(data.messages, per_second=150)  # about 40 s of stream
        wait_for(lambda: publisher.published, lambda n: n >= 600, timeout_s=30, what="publishing")
        influxd.kill()
        for gateway in gateways.values():
            degraded = wait_for(gateway.health,
                                lambda h: h is not None and h["status"] == "degraded",
                                timeout_s=10, what="/health to report the store down")  # fmt: skip
            assert degraded is not None
        time.sleep(30)  # the outage: the stream goes on into the spools
        for gateway in gateways.values():
            assert len(list(gateway.spool.glob("*.seg"))) > 0
        influxd.restart()
        publisher.join()
    finally:
        publisher.close()
    for path, gateway in gateways.items():
        wait_for_points(influxd, data.readings_by_kind, database=f"{DATABASE}_{path}")
        wait_for(gateway.health, lambda h: h is not None and h["status"] == "ok", timeout_s=30,
                 what="the store to be healthy again")  # fmt: skip
        wait_for(lambda: list(gateway.spool.glob("*.seg")), lambda left: left == [],  # noqa: B023
                 timeout_s=30, what="the spool to drain")  # fmt: skip
        metrics = gateway.metrics()
        assert metrics["facility_readings_spooled_total"] > 0
        assert metrics["facility_readings_dropped_total"] == 0
        assert gateway.running


def test_gateway_sigkilled_mid_stream_and_restarted_misses_nothing(
    gateway_per_path: dict[str, GatewayProcess],
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    load_site: Site,
) -> None:
    """On both packet paths from one stream (two gateways side by side, both killed at the
    same point and restarted together)."""
    gateways = gateway_per_path
    data = stream(load_site, 600, 10, start_ms_for(600))
    publisher = Publisher(mosquitto.port)
    try:
        publisher.start(data.messages, per_second=600)  # about 10 s of stream
        wait_for(lambda: publisher.published, lambda n: n >= 1500, timeout_s=30, what="publishing")
        for gateway in gateways.values():
            gateway.kill()
        wait_for(lambda: publisher.published, lambda n: n >= 3000, timeout_s=30,
                 what="more publishing while the gateways are dead")  # fmt: skip
        start_together(list(gateways.values()))
        publisher.join()
    finally:
        publisher.close()
    for path, gateway in gateways.items():
        wait_for_points(influxd, data.readings_by_kind, database=f"{DATABASE}_{path}")
        assert gateway.running


BAD_PER_KIND = 1000


def _bad_messages(site: Site, start: int) -> tuple[list[Message], Counter[str]]:
    pump = site.by_kind["pump"][0]
    gate = site.by_kind["gate"][0]
    topic = f"facility/v1/{site.id}/{pump.building_id}/pump/{pump.id}/telemetry"
    wrong_kind = f"facility/v1/{site.id}/{gate.building_id}/pump/{gate.id}/telemetry"
    templates: dict[str, tuple[str, bytes]] = {
        "malformed_json": (topic, b'{"ts": 1, "seq": '),
        "non_finite": (topic, b'{"ts": %d, "seq": 1, "suction_bar": NaN}' % start),
        "not_object": (topic, b'["ts", 1]'),
        "bad_timestamp": (topic, b'{"ts": "yesterday", "seq": 1, "leak": false}'),
        "bad_seq": (topic, b'{"ts": %d, "seq": -4, "leak": false}' % start),
        "no_fields": (topic, b'{"ts": %d, "seq": 1}' % start),
        "unknown_field": (topic, b'{"ts": %d, "seq": 1, "colour": 3}' % start),
        "bad_type": (topic, b'{"ts": %d, "seq": 1, "suction_bar": "high"}' % start),
        "out_of_range": (topic, b'{"ts": %d, "seq": 1, "tank_level_pct": 180.0}' % start),
        "unknown_device": (wrong_kind, b'{"ts": %d, "seq": 1, "leak": false}' % start),
    }
    messages = [template for template in templates.values() for _ in range(BAD_PER_KIND)]
    extra = {
        "ts_future": (topic, b'{"ts": %d, "seq": 1, "leak": false}' % (now_ms() + 86_400_000)),
        "ts_too_old": (topic, b'{"ts": 1000, "seq": 1, "leak": false}'),
        "oversized": (topic, b'{"ts": 1, "seq": 1, "pad": "' + b"x" * 300_000 + b'"}'),
    }
    messages += [template for template in extra.values() for _ in range(5)]
    expected = Counter({reason: BAD_PER_KIND for reason in templates})
    expected.update({reason: 5 for reason in extra})
    return messages, expected


def test_10k_malformed_payloads_are_counted_by_reason_and_valid_ones_stored(
    gateway: GatewayProcess, mosquitto: ServiceProcess, influxd: ServiceProcess, load_site: Site
) -> None:
    start = start_ms_for(100)
    good: Stream = stream(load_site, 100, 1, start)
    bad, expected = _bad_messages(load_site, start)
    mixed = good.messages + bad
    random.Random(11).shuffle(mixed)
    publisher = Publisher(mosquitto.port)
    try:
        publisher.publish_all(mixed)
    finally:
        publisher.close()
    wait_for_points(influxd, good.readings_by_kind)
    metrics = wait_for(
        gateway.metrics,
        lambda m: m.get("facility_messages_received_total") == len(mixed),
        timeout_s=30,
        what="every message to be counted",
    )
    rejected = {
        name.split('"')[1]: int(value)
        for name, value in metrics.items()
        if name.startswith("facility_rejected_total{")
    }
    assert rejected == dict(expected)
    assert sum(rejected.values()) == len(bad) >= 10_000
    letters = Counter(
        orjson.loads(line)["reason"] for line in gateway.dead_letters.read_bytes().splitlines()
    )
    assert letters == expected
    assert gateway.running


def test_a_partial_write_keeps_the_good_points_and_dead_letters_the_rest(
    gateway: GatewayProcess, mosquitto: ServiceProcess, influxd: ServiceProcess, load_site: Site
) -> None:
    # An integer `suction_bar` already in the shard: every float one we write now conflicts.
    start = start_ms_for(20)
    conflict = f"pump,site=load,device=legacy suction_bar=1i {start}"
    response = httpx.post(f"http://127.0.0.1:{influxd.port}/write",
                          params={"db": DATABASE, "precision": "ms"}, content=conflict)  # fmt: skip
    assert response.status_code == 204
    data = stream(load_site, 20, 5, start)
    publisher = Publisher(mosquitto.port)
    try:
        publisher.publish_all(data.messages)
    finally:
        publisher.close()
    good = Counter({k: v for k, v in data.readings_by_kind.items() if k != "pump"})
    # Every pump reading of ours was refused (the legacy point has no `running`, not counted).
    wait_for_points(influxd, good)
    pump_readings = data.readings_by_kind["pump"]

    def refused() -> int:
        if not gateway.dead_letters.exists():
            return 0
        letters = [orjson.loads(line) for line in gateway.dead_letters.read_bytes().splitlines()]
        return sum(int(letter["detail"].split(" ")[0]) for letter in letters)

    wait_for(refused, lambda n: n == pump_readings, timeout_s=30, what="the refused points")
    letters = [orjson.loads(line) for line in gateway.dead_letters.read_bytes().splitlines()]
    assert {letter["reason"] for letter in letters} == {"field_type_conflict"}
    assert all("suction_bar" in letter["detail"] for letter in letters)
    assert all(letter["excerpt"].startswith("pump,site=load") for letter in letters)
    assert gateway.metrics()["facility_points_rejected_total"] == pump_readings


def test_broker_restarted_mid_stream_the_gateway_reconnects_and_misses_nothing(
    gateway: GatewayProcess, mosquitto: ServiceProcess, influxd: ServiceProcess, load_site: Site
) -> None:
    data = stream(load_site, 200, 10, start_ms_for(200))
    half = len(data.messages) // 2
    publisher = Publisher(mosquitto.port, client_id="before-restart")
    try:
        publisher.publish_all(data.messages[:half])
    finally:
        publisher.close()
    mosquitto.restart()  # a clean stop saves the persistent sessions and their queues
    wait_for(gateway.health, lambda h: h is not None and h["mqtt_connected"] is True,
             timeout_s=60, what="the gateway to reconnect")  # fmt: skip
    publisher = Publisher(mosquitto.port, client_id="after-restart")
    try:
        publisher.publish_all(data.messages[half:])
    finally:
        publisher.close()
    wait_for_points(influxd, data.readings_by_kind)
    assert gateway.running


def test_two_gateways_on_a_shared_subscription_split_the_stream(
    tmp_path: Path, site_file: Path, mosquitto: ServiceProcess, influxd: ServiceProcess,
    load_site: Site,
) -> None:  # fmt: skip
    gateways = []
    for number in (1, 2):
        work = tmp_path / f"gateway-{number}"
        work.mkdir()
        gateways.append(
            GatewayProcess(work, site_file, mosquitto.port, influxd.port, DATABASE,
                           "--shared-group", "ingest", "--mqtt-client-id", f"shared-{number}",
                           start=False)
        )  # fmt: skip
    start_together(gateways)
    try:
        data = stream(load_site, 100, 5, start_ms_for(100))
        publisher = Publisher(mosquitto.port)
        try:
            publisher.publish_all(data.messages)
        finally:
            publisher.close()
        wait_for_points(influxd, data.readings_by_kind)
        taken = [p.metrics()["facility_messages_received_total"] for p in gateways]
        assert sum(taken) == len(data.messages)  # each message went to exactly one gateway
        assert all(n > 0 for n in taken)
    finally:
        for process in gateways:
            if process.running:
                process.stop()
