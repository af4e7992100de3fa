"""`facility rules backtest` over InfluxDB 1.x: the history the gateway wrote there replays to
the same faults as the embedded store's (tests/unit/test_rule_backtest.py)."""

from __future__ import annotations

import pytest

from alerts.backtest import BacktestError, InfluxV1HistorySource, backtest, run_command
from alerts.rules import default_rule_set
from ingest.influx_v1 import InfluxV1Settings, InfluxV1Writer
from tests.conftest import DEMO_SITE
from tests.services import ServiceProcess, free_port
from tests.unit.test_rule_backtest import _iso
from tests.unit.test_rule_pack import MINI, START_MS, simulate

pytestmark = pytest.mark.integration


def test_influx_history_replays_to_the_faults_the_rules_would_have_raised(
    influxd: ServiceProcess,
) -> None:
    url = f"http://127.0.0.1:{influxd.port}"
    writer = InfluxV1Writer(MINI, InfluxV1Settings(url=url, database="bt"))
    writer.ensure_database()
    batch = simulate(
        MINI,
        rate_hz=1,
        duration_s=600,
        inject=["pump-dry-run:pump-1@60+200", "device-silent:b1-u1-door@300"],
    )
    assert writer.write(batch).written == len(batch)
    writer.close()

    source = InfluxV1HistorySource(MINI, url, "bt")
    try:
        result = backtest(MINI, default_rule_set(), source, START_MS, START_MS + 600_000)
    finally:
        source.close()
    assert result.readings == 600 * len(MINI.devices) - 300
    got = sorted((f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in result.opened)
    assert got == [
        ("device.offline", "b1-u1-door", START_MS + 299_000, START_MS + 420_000),
        ("pump.dry_run", "pump-1", START_MS + 60_000, START_MS + 90_000),
    ]
    assert [(c.rule_id, c.cleared_ms) for c in result.cleared] == [
        ("pump.dry_run", START_MS + 260_000)
    ]

    with pytest.raises(BacktestError, match="database not found"):
        run_command(
            site_path=DEMO_SITE, rules_path=None, sqlite_path=DEMO_SITE,
            start=_iso(START_MS), end=_iso(START_MS + 60_000),
            influx_url=url, influx_db="no_such_db",
        )  # fmt: skip


def test_an_unreachable_influxdb_is_a_clear_error() -> None:
    with pytest.raises(BacktestError, match="cannot read InfluxDB"):
        run_command(
            site_path=DEMO_SITE, rules_path=None, sqlite_path=DEMO_SITE,
            start=_iso(START_MS), end=_iso(START_MS + 60_000),
            influx_url=f"http://127.0.0.1:{free_port()}",
        )  # fmt: skip
