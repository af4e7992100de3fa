"""`facility rules backtest`: stored history (the embedded SQLite store) replayed through the
rules lists the faults they would have raised; bad ranges and dates are explained."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.backtest import BacktestError, BacktestResult, backtest, run_command
from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Category, Severity
from alerts.rules import default_rule_set
from ingest.errors import StoreUnavailableError
from ingest.registry import open_history
from ingest.settings import StoreSettings
from ingest.sqlite_store import SQLiteTimeSeries
from runtime.cli import main
from tests.unit.test_rule_pack import MINI, START_MS, simulate


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "telemetry.sqlite3"
    writer = SQLiteTimeSeries(MINI, path)
    batch = simulate(
        MINI,
        rate_hz=1,
        duration_s=600,
        inject=["pump-dry-run:pump-1@60+200", "device-silent:b1-u1-door@300"],
    )
    writer.write(batch)
    writer.close()
    return path


def test_the_backtest_finds_what_the_rules_would_have_raised(store: Path) -> None:
    source = open_history(MINI, StoreSettings(sqlite_path=store))
    result = backtest(MINI, default_rule_set(), source, START_MS, START_MS + 600_000)
    source.close()
    assert result.readings == 600 * len(MINI.devices) - 300  # the door was silent 300 s
    got = sorted((f.rule_id, f.device_id, f.started_ms, f.detected_ms) for f in result.opened)
    assert got == [
        ("device.offline", "b1-u1-door", START_MS + 299_000, START_MS + 420_000),
        ("pump.dry_run", "pump-1", START_MS + 60_000, START_MS + 90_000),
    ]
    assert [(c.rule_id, c.cleared_ms) for c in result.cleared] == [
        ("pump.dry_run", START_MS + 260_000)
    ]


def test_the_command_prints_one_line_per_fault(store: Path) -> None:
    lines = run_command(
        site_path=Path("sites/shangri-la.toml"),
        rules_path=None,
        store=StoreSettings(sqlite_path=store),
        start=_iso(START_MS),
        end=_iso(START_MS + 600_000),
    )
    # the demo site shares only the pumps and the north gate with the stored mini site: the
    # rest of its devices never reported, so they are offline
    assert "faults from 2400 readings of site 'shangri-la'" in lines[0]
    (dry,) = [line for line in lines if "pump.dry_run" in line]
    assert "pump-1" in dry
    assert "cleared 2026-09-20T16:04:20Z" in dry
    assert sum("device.offline" in line for line in lines) == 128 - 4
    # 125 orders over 128 devices x 10 minutes
    assert ": 125 work orders, 140625.0 per 1000 device-days (1 device-days)" in lines[0]


def test_orders_count_one_per_episode_apart_and_per_family() -> None:
    def fault(rule: str, start_s: int, *, flap: bool = False, family: bool = False) -> FaultOpened:
        members = ("lev.warning", "lev.major") if family else ()
        return FaultOpened(
            rule, "elevator", "el1", "b1", "u1", Severity.WARNING, Category.EQUIPMENT, "t",
            START_MS + start_s * 1000, START_MS + start_s * 1000, family_rules=members,
            flap=flap,
        )  # fmt: skip

    result = BacktestResult(START_MS, START_MS + 86_400_000)
    result.opened = [
        fault("leak", 0),
        fault("leak", 100, flap=True),  # back within the gap: the same order
        fault("leak", 9000),  # apart: a new order
        fault("lev.warning", 0, family=True),
        fault("lev.major", 50, family=True),  # escalates the warning's order
    ]
    result.cleared = [
        FaultCleared("leak", "el1", START_MS + 60_000),
        FaultCleared("leak", "el1", START_MS + 200_000),
    ]
    assert result.orders() == 3


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-09-21", "2026-09-20", "must be before"),
        ("2026-09-21", "2026-09-21", "must be before"),
        ("yesterday", "2026-09-21", "--from 'yesterday' is not a date"),
        ("2026-09-20", "2026-13-01", "--to '2026-13-01' is not a date"),
    ],
)
def test_bad_ranges_are_refused(start: str, end: str, message: str, store: Path) -> None:
    with pytest.raises(BacktestError, match=message):
        run_command(
            site_path=Path("sites/shangri-la.toml"),
            rules_path=None,
            store=StoreSettings(sqlite_path=store),
            start=start,
            end=end,
        )


def test_the_cli_reports_errors_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "backtest", "--from", "2026-09-21", "--to", "2026-09-20"])
    assert code == 2
    assert "must be before" in capsys.readouterr().err


def test_a_missing_store_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"no time-series store at .*nothing\.sqlite3"):
        run_command(
            site_path=Path("sites/shangri-la.toml"),
            rules_path=None,
            store=StoreSettings(sqlite_path=tmp_path / "nothing.sqlite3"),
            start="2026-09-20",
            end="2026-09-21",
        )


def test_the_cli_reads_the_store_it_is_told_to(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rules", "backtest", "--from", _iso(START_MS), "--to", _iso(START_MS + 600_000)]
    assert main([*argv, "--store", "sqlite", "--sqlite-path", str(store)]) == 0
    assert "faults from 2400 readings of site 'shangri-la'" in capsys.readouterr().out
    assert main([*argv, "--store", "influx-v1", "--influx-url", "http://127.0.0.1:1"]) == 2
    assert "InfluxDB 1.x at http://127.0.0.1:1 unreachable" in capsys.readouterr().err
