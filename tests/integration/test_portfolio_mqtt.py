"""A portfolio on real services: three estates with the same building and device ids, the
simulator publishing all three to Mosquitto, one gateway -> InfluxDB and work orders. One
estate's fault is filed on that estate, and every series is tagged with its own estate."""

from __future__ import annotations

import functools
import subprocess
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
    gateway = _gateway(tmp_path / "gateway", sites, mosquitto, influxd, db_url)
    try:
        log = wait_for(
            (tmp_path / "gateway" / "gateway.log").read_text,
            lambda text: "subscribed to" in text and "gateway for shard" in text,
            timeout_s=30,
            what="the gateway to subscribe",
        )
        assert "shard site-portfolio (site alpha+beta+gamma)" in log
        _simulate_with_beta_pump_dry(sites, mosquitto, influxd)
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
    assert code == 0, (tmp_path / "gateway" / "gateway.log").read_text()[-3000:]


def test_a_gateway_per_group_of_estates_files_only_its_own(
    tmp_path: Path, mosquitto: ServiceProcess, influxd: ServiceProcess
) -> None:
    """Two shards, alpha+gamma and beta, each with its own work-order database: beta's fault
    is in beta's, and the alpha+gamma gateway neither takes beta's telemetry nor files it."""
    sites = write_estates(tmp_path / "sites")
    shards = {"ag": ("alpha", "gamma"), "b": ("beta",)}
    urls = {name: f"sqlite:///{tmp_path / f'{name}.sqlite3'}" for name in shards}
    gateways = {
        name: _gateway(tmp_path / name, sites, mosquitto, influxd, urls[name], estates)
        for name, estates in shards.items()
    }
    try:
        for name, estates in shards.items():
            log = wait_for(
                (tmp_path / name / "gateway.log").read_text,
                lambda text: "subscribed to" in text and "gateway for shard" in text,
                timeout_s=30,
                what=f"gateway {name} to subscribe",
            )
            topics = [f"facility/v1/{s}/+/+/+/telemetry" for s in estates]
            assert f"subscribed to {', '.join(topics)}" in log
            assert f"shard sites-{'+'.join(estates)}" in log
        _simulate_with_beta_pump_dry(sites, mosquitto, influxd)

        def faults(name: str) -> list[tuple[str, str | None, str | None]]:
            orders = WorkOrderStore(make_engine(urls[name])).list_work_orders()
            return [
                (o.site_id, o.device_id, o.rule_id) for o in orders if o.rule_id != SITE_RULE_ID
            ]

        wait_for(functools.partial(faults, "b"), bool, timeout_s=15, what="beta's order")
        filed = {name: faults(name) for name in shards}  # beta's order is filed: ag had its chance
        assert filed == {"ag": [], "b": [("beta", "beta:b03-pump", "pump.dry_run")]}
        letters = (tmp_path / "ag" / "dead-letters.jsonl").read_text()
        assert "unknown_site" not in letters  # beta's topics never reached it
    finally:
        codes = {name: stop_process(g) for name, g in gateways.items()}
    assert codes == {"ag": 0, "b": 0}


def _gateway(
    workdir: Path,
    sites: Path,
    mosquitto: ServiceProcess,
    influxd: ServiceProcess,
    db_url: str,
    estates: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dead-letters.jsonl").touch()
    shard = [arg for site in estates for arg in ("--shard-sites", site)]
    return start_facility(
        [
            "gateway",
            "--site", str(sites),
            "--mqtt-port", str(mosquitto.port),
            "--mqtt-client-id", f"gateway-{workdir.name}",
            "--store", "influx-v1",
            "--influx-url", f"http://127.0.0.1:{influxd.port}",
            "--influx-db", DATABASE,
            "--db-url", db_url,
            "--dead-letters", str(workdir / "dead-letters.jsonl"),
            "--spool-dir", str(workdir / "spool"),
            "--rules-state", str(workdir / "rules-state.npz"),
            "--metrics-port", str(free_port()),
            *shard,
        ],
        workdir / "gateway.log",
    )  # fmt: skip


def _simulate_with_beta_pump_dry(
    sites: Path, mosquitto: ServiceProcess, influxd: ServiceProcess
) -> None:
    """Every estate for DURATION_S, beta's `b03-pump` dry from 20 s; waits until InfluxDB holds
    every reading under its own estate's `site` tag."""
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
