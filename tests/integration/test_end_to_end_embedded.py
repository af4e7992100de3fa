"""`facility up` on embedded defaults (amqtt broker, SQLite), as the demo runs it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import DEMO_SITE
from tests.integration.helpers import start_facility, stop_process, wait_for
from tests.receiver import HttpReceiver, Reply
from tests.services import free_port

pytestmark = pytest.mark.integration


DEMO_PASSWORD = "demo-password-e2e"
AUTH: dict[str, str] = {}
"""The dispatcher's bearer header once logged in (the API needs a login)."""


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0, headers=AUTH)
    except httpx.HTTPError:
        return None


def _login(base: str, username: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": username, "password": DEMO_PASSWORD},
        timeout=5.0,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _open_orders(base: str) -> list[dict[str, object]]:
    response = _get(f"{base}/api/v1/work-orders?status=open")
    if response is None or response.status_code != 200:
        return []
    items: list[dict[str, object]] = response.json()["items"]
    return [o for o in items if o["source"] != "scheduled"]  # the plans' routine visits aside


def test_up_serves_live_status_and_turns_a_dry_run_into_one_work_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACILITY_DEMO_PASSWORD", DEMO_PASSWORD)  # `up` makes its demo users
    AUTH.clear()
    port, mqtt_port = free_port(), free_port()
    var = tmp_path / "var"
    receiver = HttpReceiver([Reply(204)]).start()
    alerts_config = tmp_path / "alerts.toml"
    alerts_config.write_text(
        f'[[notifications]]\ntype = "webhook"\nurl = "{receiver.url}/hook"\n', encoding="utf-8"
    )
    up = start_facility(
        [
            "up",
            "--site", str(DEMO_SITE),
            "--var-dir", str(var),
            "--port", str(port),
            "--mqtt-port", str(mqtt_port),
            "--metrics-port", str(free_port()),
            "--inject", "pump-dry-run:pump-1@1",
            "--alerts-config", str(alerts_config),
        ],
        tmp_path / "up.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        page = wait_for(
            lambda: _get(f"{base}/"),
            lambda r: r is not None and r.status_code == 200,
            timeout_s=30,
            what="the dashboard",
        )
        assert page is not None
        assert "Shangri-La Residences" in page.text
        assert _get(f"{base}/api/v1/buildings/b01/status").status_code == 401  # type: ignore[union-attr]
        AUTH.update(_login(base, "dispatcher"))
        live = wait_for(
            lambda: _get(f"{base}/api/v1/buildings/b01/status"),
            lambda r: r is not None and r.json()["status"] == "ok",
            timeout_s=30,
            what="building b01 to report live status",
        )
        assert live is not None
        assert all(d["status"] == "ok" and d["last_seen_ms"] for d in live.json()["devices"])

        # The dry run starts after 1 s; the rule needs 30 s of it: well within a minute.
        orders = wait_for(
            lambda: _open_orders(base),
            lambda items: len(items) > 0,
            timeout_s=60,
            what="a work order for the dry run",
        )
        assert [(o["device_id"], o["rule_id"]) for o in orders] == [("pump-1", "pump.dry_run")]
        estate = httpx.get(f"{base}/api/v1/buildings/estate/status", timeout=5, headers=AUTH).json()
        assert estate["status"] == "alarm"
        pump = next(d for d in estate["devices"] if d["id"] == "pump-1")
        assert pump["status"] == "alarm"
        assert pump["values"]["suction_bar"] < 0.2
        # ... and the plumbers heard about it through the configured webhook.
        # (the plans' routine visits that `up` schedules at start are announced too)
        documents = wait_for(
            lambda: [orjson.loads(n.body) for n in receiver.wait_for(1)],
            lambda docs: any(d["work_order"]["source"] == "fault" for d in docs),
            timeout_s=10,
            what="the dry run's notice",
        )
        (document,) = [d for d in documents if d["work_order"]["source"] == "fault"]
        assert document["event"] == "created"
        assert document["work_order"]["rule_id"] == "pump.dry_run"
        assert document["work_order"]["team"] == "plumbing"
        assert up.poll() is None
    finally:
        code = stop_process(up)
        receiver.stop()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    with sqlite3.connect(var / "telemetry.sqlite3") as db:
        (pump_rows,) = db.execute("SELECT count(*) FROM ts_pump").fetchone()
    assert pump_rows >= 3 * 30  # three pumps, at least the 30 s the rule needed
