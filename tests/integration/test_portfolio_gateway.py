"""A portfolio on real services: three estates with the same building and device ids, the
simulator publishing all three to Mosquitto, one gateway -> InfluxDB and work orders. One
estate's fault is filed on that estate, and every series is tagged with its own estate."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from alerts.rule_faults import SITE_RULE_ID
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.portfolio import load_portfolio
from ingest.history import SeriesQuery
from ingest.influx_history import InfluxV1History
from ingest.influx_v1 import InfluxV1Settings
from tests.integration.helpers import run_simulation, start_facility, stop_process, wait_for
from tests.portfolio_sites import DEVICES_PER_ESTATE, ESTATES, write_estates
from tests.services import ServiceProcess, free_port, influxql

pytestmark = pytest.mark.integration

DATABASE = "facility_portfolio"
DURATION_S = 120
ALWAYS_REPORTED = {"elevator": "running", "pump": "running"}


def _counts_by_estate(influxd: ServiceProcess) -> dict[str, int]:
    """Readings stored per `site` tag."""
    counts = dict.fromkeys(ESTATES, 0)
    for kind, field in ALWAYS_REPORTED.items():
        for site in ESTATES:
            rows = influxql(
                influxd.port,
                DATABASE,
                f'SELECT count("{field}") FROM "{kind}" WHERE "site" = \'{site}\'',
            )
            counts[site] += int(rows[0][1]) if rows else 0  # type: ignore[call-overload]
    return counts


def test_one_estates_fault_is_filed_on_that_estate(
    tmp_path: Path, mosquitto: ServiceProcess, influxd: ServiceProcess
) -> None:
    sites = write_estates(tmp_path / "sites")
    portfolio = load_portfolio(sites)
    db_url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    gateway = start_facility(
        [
            "gateway",
            "--site", str(sites),
            "--mqtt-port", str(mosquitto.port),
            "--store", "influx-v1",
            "--influx-url", f"http://127.0.0.1:{influxd.port}",
            "--influx-db", DATABASE,
            "--db-url", db_url,
            "--dead-letters", str(tmp_path / "dead-letters.jsonl"),
            "--spool-dir", str(tmp_path / "spool"),
            "--rules-state", str(tmp_path / "rules-state.npz"),
            "--metrics-port", str(free_port()),
        ],
        tmp_path / "gateway.log",
    )  # fmt: skip
    try:
        log = wait_for(
            (tmp_path / "gateway.log").read_text,
            lambda text: "subscribed to" in text,
            timeout_s=30,
            what="the gateway to subscribe",
        )
        assert "shard site-portfolio (site alpha+beta+gamma)" in log
        summary = run_simulation(
            [
                "--site", str(sites),
                "--mqtt-port", str(mosquitto.port),
                "--duration", str(DURATION_S),
                "--speed", "0",
                "--batch", "5",
                "--seed", "7",
                "--inject", "pump-dry-run:beta:b03-pump@20+90",
            ]
        )  # fmt: skip
        assert summary["readings_by_kind"] == {
            "elevator": DURATION_S * 2 * len(ESTATES),
            "pump": DURATION_S * len(ESTATES),
        }
        per_estate = DURATION_S * DEVICES_PER_ESTATE
        counts = wait_for(
            functools.partial(_counts_by_estate, influxd),
            lambda c: c == dict.fromkeys(ESTATES, per_estate),
            timeout_s=30,
            what="every estate's readings in InfluxDB under its own site tag",
        )
        assert counts == dict.fromkeys(ESTATES, per_estate)
        assert gateway.poll() is None, "the gateway stopped"

        store = WorkOrderStore(make_engine(db_url))
        faults = wait_for(
            lambda: [o for o in store.list_work_orders() if o.rule_id != SITE_RULE_ID],
            bool,
            timeout_s=15,
            what="the dry run's work order",
        )
        assert [(o.site_id, o.building_id, o.device_id, o.rule_id) for o in faults] == [
            ("beta", "beta:b03", "beta:b03-pump", "pump.dry_run")
        ]
        # An estate that went silent once the simulation ended is its own incident.
        incidents = [o for o in store.list_work_orders() if o.rule_id == SITE_RULE_ID]
        assert all(o.site_id == o.device_id and o.site_id in ESTATES for o in incidents)

        # The charts find a device's series by its scoped id.
        history = InfluxV1History(
            portfolio,
            InfluxV1Settings(url=f"http://127.0.0.1:{influxd.port}", database=DATABASE),
        )
        now_ms = time.time_ns() // 1_000_000
        try:
            points = {
                s: history.raw(
                    SeriesQuery("pump", f"{s}:b03-pump", "suction_bar", now_ms - 3_600_000, now_ms)
                )
                for s in ESTATES
            }
        finally:
            history.close()
        assert {s: len(p) for s, p in points.items()} == dict.fromkeys(ESTATES, DURATION_S)
        dry = {s: min(p.value for p in points[s]) for s in ESTATES}
        assert dry["beta"] < 0.2 < min(dry["alpha"], dry["gamma"])
    finally:
        code = stop_process(gateway)
    assert code == 0, (tmp_path / "gateway.log").read_text()[-3000:]
