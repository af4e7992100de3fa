"""What issue 14 asks to see: `facility report` of the demo estate over a simulated month makes
a PDF whose text holds the figures GET /api/v1/buildings/{id}/service gives for that month,
and a CSV with the same numbers; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from alerts.owners_report import previous_month_ms
from alerts.owners_tables import minutes, percent
from alerts.store import WorkOrderFilter
from facility.site import Site
from runtime.cli import main
from tests.api_support import new_store, running_api
from tests.conftest import DEMO_SITE
from tests.fakes import FakeClock
from tests.month_of_orders import DAY, simulate_month

pytestmark = pytest.mark.integration


def _service_row(api: Any, building_id: str, start: int, end: int) -> list[str]:
    response = api.get(
        f"/api/v1/buildings/{building_id}/service", "admin",
        params={"start_ms": start, "end_ms": end},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    f = response.json()
    return [
        str(f["work_orders"]), str(f["reports"]), minutes(f["mean_time_to_acknowledge_s"]),
        minutes(f["mean_time_to_resolve_s"]), percent(f["sla"]["compliance"]),
        percent(f["elevator_availability"]),
    ]  # fmt: skip


def test_the_report_of_a_simulated_month_holds_the_apis_figures(
    db_url: str, demo_site: Site, tmp_path: Path
) -> None:
    now = time.time_ns() // 1_000_000
    start, end = previous_month_ms(now, demo_site.timezone)
    clock = FakeClock(start)
    store = new_store(db_url, clock)
    # 20 days of faults from the month's start: every deadline (7 days at most) has passed by
    # its end, so the figures do not change between the command and the API's answer.
    filed = simulate_month(store, demo_site, clock, start_ms=start, days=20)
    assert filed > 80
    month = dt.datetime.fromtimestamp(start / 1000, ZoneInfo(demo_site.timezone))
    out = tmp_path / "out"
    out.mkdir()
    argv = ["report", "--site", str(DEMO_SITE), "--db-url", db_url, "--output", str(out)]
    assert main([*argv, "--month", month.strftime("%Y-%m"), "--lang", "zh"]) == 0
    (pdf_path,) = out.glob("*.pdf")
    (csv_path,) = out.glob("*.csv")
    pages = PdfReader(io.BytesIO(pdf_path.read_bytes())).pages
    text = " ".join(" ".join(p.extract_text() for p in pages).split())
    rows = {
        row[1]: row[3:]
        for row in csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig")))
        if row[:1] == ["buildings"]
    }

    clock.now = now
    with running_api(demo_site, store, clock) as api:
        total = 0
        for building in demo_site.buildings:
            figures = _service_row(api, building.id, start, end)
            assert rows[building.id] == figures, building.id
            line = " ".join([building.id, building.name, *figures])
            assert line in text, line
            total += int(figures[0])
    # Every order of the month is in one building's figures.
    assert total == store.count_work_orders(
        WorkOrderFilter(created_from_ms=start, created_to_ms=end)
    )
    assert total > 60
    assert end - start >= 28 * DAY
    assert "业主大会报告" in text
