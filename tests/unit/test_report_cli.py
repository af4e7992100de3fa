"""`facility report`: the owners' report of a period as PDF and CSV files, the same figures as
the report computed directly (maintenance plans and lead from the [maintenance] settings); bad
periods, languages, outputs and plan files are refused with a message."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from alerts.maintenance.plans import load_plans
from alerts.owners_csv import render_csv
from alerts.owners_report import day_range_ms, owners_report, previous_month_ms
from alerts.owners_tables import local_date
from facility.clock import now_ms
from facility.site import Site
from runtime.cli import main
from tests.api_support import new_store
from tests.conftest import DEMO_SITE
from tests.fakes import FakeClock
from tests.owners_support import LEAD_MS, NOW, P0, add_maintenance, add_month_of_orders

FIRST = dt.datetime.fromtimestamp(P0 / 1000, dt.UTC).date()
LAST = FIRST + dt.timedelta(days=9)


def _body(csv_bytes: bytes) -> list[str]:
    """The CSV without its heading block (which holds when it was generated)."""
    lines = csv_bytes.decode("utf-8-sig").splitlines()
    return [line for line in lines if not line.startswith("report,")]


def test_a_report_of_a_day_range_as_pdf_and_csv(
    db_url: str, demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = new_store(db_url, FakeClock(NOW))
    add_month_of_orders(store, demo_site)
    add_maintenance(store, demo_site, load_plans())
    days = ["--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    base = ["report", "--site", str(DEMO_SITE), "--db-url", db_url, *days]
    out = tmp_path / "out"
    out.mkdir()
    assert main([*base, "--lang", "zh", "--output", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    stem = f"owners-report-shangri-la-{FIRST}-{LAST}-zh"
    assert written == [f"{stem}.csv", f"{stem}.pdf"]
    assert f"wrote {out / stem}.pdf" in capsys.readouterr().out

    start, end = day_range_ms(FIRST, LAST, demo_site.timezone)
    direct = owners_report(
        demo_site, store, start_ms=start, end_ms=end, now_ms=NOW,
        plans=load_plans(), lead_ms=LEAD_MS,
    )  # fmt: skip
    store.engine.dispose()
    csv_bytes = (out / f"{stem}.csv").read_bytes()
    assert _body(csv_bytes) == _body(render_csv(direct, "zh"))
    # The site's days are Shanghai's: the period starts 8 h before P0 and ends 8 h before
    # P0 + 10 d; the counts of b03's and b05's eight cars are the same, and every other car,
    # tracked by no scheduler yet, is due.
    cars = sum(d.kind == "elevator" for d in demo_site.devices)
    alarm = ["maintenance", "EN 81-28 紧急报警装置自检", "3", str(cars), "7", "5"]
    alarm += [str(cars - 7), "2"]
    assert ",".join(alarm) in _body(csv_bytes)
    assert any(
        line.startswith("overdue_plans,b03,b03-u1-el2,Elevator 2,EN 81-28 紧急报警装置自检,")
        for line in _body(csv_bytes)
    )
    pdf = PdfReader(io.BytesIO((out / f"{stem}.pdf").read_bytes()))
    text = " ".join(" ".join(page.extract_text() for page in pdf.pages).split())
    assert "业主大会报告" in text
    assert f"{direct.estate.sla.compliance * 100:.2f}" in text  # type: ignore[operator]

    one = tmp_path / "march.csv"
    assert main([*base, "--format", "csv", "--output", str(one)]) == 0
    assert one.read_bytes().startswith(b"\xef\xbb\xbfsection,Figure,Value")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-01"], "--from and --to go together"),
        (["--month", "2026-03", "--from", "2026-03-01", "--to", "2026-03-02"], "either --month"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "ends (2026-03-01) before it starts"),
        (["--from", "2025-01-01", "--to", "2026-03-01"], "at most 366 days"),
        (["--output", "{tmp}/report.pdf"], "both formats need a directory"),
        (["--format", "pdf", "--output", "{tmp}/nowhere/report.pdf"], "no directory"),
    ],
)
def test_bad_periods_and_outputs_are_refused(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    argv = ["report", "--site", str(DEMO_SITE), "--db-url", url]
    assert main([*argv, *(a.replace("{tmp}", str(tmp_path)) for a in args)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.pdf"))


OVERRIDE = """\
[[plans]]
id = "elevator.alarm_test"
enabled = false
kind = "elevator"
title = "off"
every = "72h"
evidence = "telemetry"
field = "alarm_test_ok"
passed = 1

[[plans]]
id = "gate.check"
kind = "gate"
title = "Door closer check"
title_zh = "闭门器检查"
every = "30d"
evidence = "record"
"""


def test_the_plans_and_lead_come_from_the_maintenance_settings(
    db_url: str, demo_site: Site, tmp_path: Path
) -> None:
    store = new_store(db_url, FakeClock(NOW))
    add_maintenance(store, demo_site, load_plans())
    store.engine.dispose()
    plans = tmp_path / "plans.toml"
    plans.write_text(OVERRIDE, encoding="utf-8")
    days = ["--from", FIRST.isoformat(), "--to", LAST.isoformat(), "--format", "csv"]
    out = tmp_path / "report.csv"
    argv = ["report", "--site", str(DEMO_SITE), "--db-url", db_url, *days, "--lang", "zh"]
    argv += ["--maintenance-plans", str(plans), "--maintenance-lead-s", "0", "--output", str(out)]
    assert main(argv) == 0
    rows = [line.split(",") for line in _body(out.read_bytes())]
    by_plan = {r[1]: r[2:] for r in rows if r[0] == "maintenance"}
    assert "EN 81-28 紧急报警装置自检" not in by_plan  # turned off
    # A plan of the operator's, tracked by no scheduler yet: counted from the period's end.
    gates = sum(d.kind == "gate" for d in demo_site.devices)
    assert by_plan["闭门器检查"] == ["30", str(gates), "0", "0", str(gates), "0"]
    # No lead time: b03-u2-el2's maintenance (due 11 d after P0) is no longer "due" but done.
    cars = sum(d.kind == "elevator" for d in demo_site.devices)
    assert by_plan["电梯维保（每 15 天）"][3:] == ["6", str(cars - 8), "2"]


BAD_PLANS = """\
[[plans]]
id = "gate.check"
kind = "gate"
title = "Door closer check"
every = "30d"
evidence = "hope"
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--maintenance-plans", "{tmp}/nowhere.toml"], "no such file"),
        (["--maintenance-plans", "{tmp}/bad.toml"], "bad.toml:6: plan 1: evidence 'hope'"),
        (["--maintenance-lead-s", "-5"], "maintenance.lead_s: must not be negative"),
    ],
)
def test_bad_maintenance_settings_are_refused(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.toml").write_text(BAD_PLANS, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    argv = ["report", "--site", str(DEMO_SITE), "--db-url", url, "--output", str(tmp_path)]
    assert main([*argv, *(a.replace("{tmp}", str(tmp_path)) for a in args)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.pdf"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "'2026-13' is not a month like 2026-03"),
        (["--month", "March"], "'March' is not a month"),
        (["--from", "2026-02-30", "--to", "2026-03-01"], "'2026-02-30' is not a date"),
        (["--lang", "fr"], "invalid choice: 'fr'"),
        (["--format", "docx"], "invalid choice: 'docx'"),
    ],
)
def test_malformed_arguments_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_without_a_period_it_is_last_month(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    argv = ["report", "--site", str(DEMO_SITE), "--db-url", url, "--format", "csv"]
    assert main([*argv, "--output", str(tmp_path)]) == 0
    (written,) = tmp_path.glob("*.csv")
    start, end = previous_month_ms(now_ms(), "Asia/Shanghai")
    first, last = local_date(start, "Asia/Shanghai"), local_date(end - 1, "Asia/Shanghai")
    assert first.endswith("-01")
    assert written.name == f"owners-report-shangri-la-{first}-{last}-en.csv"
