"""The whole path on real services: simulator -> Mosquitto -> gateway -> InfluxDB and
work orders -> API."""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from alerts.store import WorkOrderStore
from api.app import create_app
from api.auth.passwords import FAST_FOR_TESTS, Passwords
from db.engine import make_engine
from facility.site import Site
from tests.conftest import DEMO_SITE
from tests.integration.helpers import (
    ROOT,
    facility_argv,
    run_simulation,
    start_facility,
    stop_process,
    wait_for,
)
from tests.services import ServiceProcess, free_port, influxql

pytestmark = pytest.mark.integration

DATABASE = "facility_e2e"
ALWAYS_REPORTED = {
    "elevator": "running",
    "lighting": "commanded_on",
    "gate": "door_open",
    "pump": "running",
}


def _influx_counts(influxd: ServiceProcess) -> dict[str, int]:
    counts = {}
    for kind, field in ALWAYS_REPORTED.items():
        rows = influxql(influxd.port, DATABASE, f'SELECT count("{field}") FROM "{kind}"')
        counts[kind] = int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
    return counts


def _publish_bad_payloads(port: int) -> int:
    """A few malformed messages, as a broken device would send them; how many."""
    bad = [
        ("facility/v1/shangri-la/estate/pump/pump-3/telemetry", b"{not json"),
        ("facility/v1/shangri-la/estate/pump/pump-3/telemetry", b'{"ts": "soon", "seq": 1}'),
        (
            "facility/v1/shangri-la/estate/pump/no-such-pump/telemetry",
            b'{"ts": 1, "seq": 1, "leak": false}',
        ),
        ("facility/v1/shangri-la/estate/pump/pump-3/telemetry", b"[1, 2, 3]"),
    ]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bad-device")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in bad:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(bad)


def _api_charts_come_from_influxdb(tmp_path: Path, influxd: ServiceProcess, db_url: str) -> None:
    """`facility api --store influx-v1` as a process: the pump's trend comes from InfluxDB."""
    added = subprocess.run(
        facility_argv("users", "add", "charts", "--role", "dispatcher", "--password-stdin",
                      "--db-url", db_url, "--site", str(DEMO_SITE)),
        input=b"ops-password-123\n", capture_output=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    port = free_port()
    api = start_facility(
        ["api", "--site", str(DEMO_SITE), "--db-url", db_url, "--port", str(port),
         "--api-secret", "s" * 40, "--store", "influx-v1",
         "--influx-url", f"http://127.0.0.1:{influxd.port}", "--influx-db", DATABASE],
        tmp_path / "api.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/health"), bool, timeout_s=60, what="the API to answer")
        token = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": "charts", "password": "ops-password-123"},
            timeout=10,
        ).json()["access_token"]
        now_ms = time.time_ns() // 1_000_000
        response = httpx.get(
            f"{base}/api/v1/devices/pump-2/history",
            params={"field": "suction_bar", "start_ms": now_ms - 3_600_000, "end_ms": now_ms},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        series = response.json()["series"]
        points = series[0]["points"]
        stored = influxql(
            influxd.port, DATABASE, "SELECT count(suction_bar) FROM pump WHERE device = 'pump-2'"
        )
        assert len(points) == int(stored[0][1])  # type: ignore[call-overload]
        assert any(value < 0.2 for _ts, value in points)  # the dry run's suction, from InfluxDB
    finally:
        assert stop_process(api) == 0, (tmp_path / "api.log").read_text()[-3000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_pump_dry_run_reaches_influxdb_and_one_work_order(
    tmp_path: Path, mosquitto: ServiceProcess, influxd: ServiceProcess, demo_site: Site
) -> None:
    db_url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    dead_letters = tmp_path / "dead-letters.jsonl"
    gateway = start_facility(
        [
            "gateway",
            "--site", str(DEMO_SITE),
            "--mqtt-port", str(mosquitto.port),
            "--store", "influx-v1",
            "--influx-url", f"http://127.0.0.1:{influxd.port}",
            "--influx-db", DATABASE,
            "--db-url", db_url,
            "--dead-letters", str(dead_letters),
            "--spool-dir", str(tmp_path / "spool"),
            "--rules-state", str(tmp_path / "rules-state.npz"),
            "--metrics-port", str(free_port()),
        ],
        tmp_path / "gateway.log",
    )  # fmt: skip
    try:
        # The gateway's persistent session must exist before the simulator publishes.
        wait_for(
            (tmp_path / "gateway.log").read_text,
            lambda text: "subscribed to" in text,
            timeout_s=30,
            what="the gateway to subscribe",
        )
        bad_count = _publish_bad_payloads(mosquitto.port)
        summary = run_simulation(
            [
                "--site", str(DEMO_SITE),
                "--mqtt-port", str(mosquitto.port),
                "--duration", "150",
                "--speed", "0",
                "--batch", "5",
                "--seed", "7",
                "--inject", "pump-dry-run:pump-2@20+100",
            ]
        )  # fmt: skip
        expected = summary["readings_by_kind"]
        assert isinstance(expected, dict)
        assert sum(expected.values()) == 150 * len(demo_site.devices)
        counts = wait_for(
            functools.partial(_influx_counts, influxd),
            lambda c: c == expected,
            timeout_s=60,
            what="every reading in InfluxDB",
        )
        assert counts == expected
        assert gateway.poll() is None, "the gateway stopped"

        store = WorkOrderStore(make_engine(db_url))
        app = create_app(site=demo_site, store=store, passwords=Passwords(FAST_FOR_TESTS))
        user = app.state.context.users.add("ops", "password-1", "dispatcher")
        token, _ = app.state.context.tokens.issue(
            username="ops", user_id=user.id, role="dispatcher"
        )
        client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        orders = client.get("/api/v1/work-orders", params={"status": "open"}).json()["items"]
        assert [(o["device_id"], o["rule_id"]) for o in orders] == [("pump-2", "pump.dry_run")]
        assert orders[0]["severity"] == "critical"
        estate = client.get("/api/v1/buildings/estate/status").json()
        assert estate["status"] == "alarm"

        letters = [orjson.loads(line) for line in dead_letters.read_bytes().splitlines()]
        assert sorted(letter["reason"] for letter in letters) == sorted(
            ["malformed_json", "bad_timestamp", "unknown_device", "not_object"]
        )
        assert len(letters) == bad_count
        _api_charts_come_from_influxdb(tmp_path, influxd, db_url)
    finally:
        code = stop_process(gateway)
    assert code == 0, (tmp_path / "gateway.log").read_text()[-3000:]
