"""`facility rules backtest` over the HTTP stores: the history the gateway wrote to InfluxDB 1.x,
or to the 2.x/3.x-style store (VictoriaMetrics), replays to the same faults as the embedded
store's (tests/unit/test_rule_backtest.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from alerts.backtest import backtest, run_command
from alerts.rules import default_rule_set
from ingest.errors import StoreUnavailableError
from ingest.registry import open_history, open_writer
from ingest.settings import StoreKind, StoreSettings
from tests.conftest import DEMO_SITE
from tests.services import free_port, start_influxd, start_victoria_metrics
from tests.unit.test_rule_backtest import _iso
from tests.unit.test_rule_pack import MINI, START_MS, simulate

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["influx-v1", "influx-v2"])
def test_stored_history_replays_to_the_faults_the_rules_would_have_raised(
    kind: StoreKind, tmp_path: Path
) -> None:
    start = start_influxd if kind == "influx-v1" else start_victoria_metrics
    service = start(tmp_path / kind)
    try:
        url = f"http://127.0.0.1:{service.port}"
        settings = StoreSettings(kind=kind, influx_url=url, influx_db="bt")
        writer = open_writer(MINI, settings)
        batch = simulate(
            MINI,
            rate_hz=1,
            duration_s=600,
            inject=["pump-dry-run:pump-1@60+200", "device-silent:b1-u1-door@300"],
        )
        assert writer.write(batch).written == len(batch)
        writer.close()
        if kind == "influx-v2":
            httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()

        source = open_history(MINI, settings)
        try:
            result = backtest(MINI, default_rule_set(), source, START_MS, START_MS + 600_000)
        finally:
            source.close()
    finally:
        service.stop()
    assert result.readings == 600 * len(MINI.devices) - 300
    got = sorted((f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in result.opened)
    assert got == [
        ("device.offline", "b1-u1-door", START_MS + 299_000, START_MS + 420_000),
        ("pump.dry_run", "pump-1", START_MS + 60_000, START_MS + 90_000),
    ]
    assert [(c.rule_id, c.cleared_ms) for c in result.cleared] == [
        ("pump.dry_run", START_MS + 260_000)
    ]


def test_influxdb_without_the_database_is_a_clear_error(tmp_path: Path) -> None:
    influxd = start_influxd(tmp_path / "influxd")
    try:
        with pytest.raises(StoreUnavailableError, match="database not found"):
            run_command(
                site_path=DEMO_SITE, rules_path=None,
                store=StoreSettings(kind="influx-v1", influx_url=f"http://127.0.0.1:{influxd.port}",
                                    influx_db="no_such_db"),
                start=_iso(START_MS), end=_iso(START_MS + 60_000),
            )  # fmt: skip
    finally:
        influxd.stop()


@pytest.mark.parametrize("kind", ["influx-v1", "influx-v2"])
def test_an_unreachable_store_is_a_clear_error(kind: StoreKind) -> None:
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        run_command(
            site_path=DEMO_SITE, rules_path=None,
            store=StoreSettings(kind=kind, influx_url=f"http://127.0.0.1:{free_port()}"),
            start=_iso(START_MS), end=_iso(START_MS + 60_000),
        )  # fmt: skip
