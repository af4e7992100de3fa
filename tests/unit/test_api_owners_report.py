"""GET /api/v1/reports/owners on SQLite and PostgreSQL: the PDF and the CSV hold the figures
the service-figures route gives for the same period, and the compliance the logbook route
gives; who may have it; bad parameters."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from pypdf import PdfReader

from alerts.owners_tables import minutes, percent
from tests.api_support import Api
from tests.owners_support import NOW, P0, PERIOD, add_maintenance, add_month_of_orders

ROUTE = "/api/v1/reports/owners"
PERIOD_PARAMS = {"start_ms": P0, "end_ms": P0 + PERIOD}


@pytest.fixture
def month(api: Api) -> Api:
    api.clock.now = NOW
    add_month_of_orders(api.store, api.site)
    return api


def _csv_sections(body: bytes) -> dict[str, list[list[str]]]:
    sections: dict[str, list[list[str]]] = {}
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        if row and row[0] != "section":
            sections.setdefault(row[0], []).append(row[1:])
    return sections


def _service_cells(api: Api, building_id: str) -> list[str]:
    """The service route's figures of the building, as the report writes them."""
    response = api.get(f"/api/v1/buildings/{building_id}/service", "admin", params=PERIOD_PARAMS)
    assert response.status_code == 200, response.text
    f: dict[str, Any] = response.json()
    return [
        str(f["work_orders"]),
        str(f["reports"]),
        minutes(f["mean_time_to_acknowledge_s"]),
        minutes(f["mean_time_to_resolve_s"]),
        percent(f["sla"]["compliance"]),
        percent(f["elevator_availability"]),
    ]


def test_the_csv_holds_the_service_figures_of_every_building(month: Api) -> None:
    response = month.get(ROUTE, "dispatcher", params={**PERIOD_PARAMS, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="owners-report-shangri-la-')
    assert disposition.endswith('-en.csv"')
    rows = _csv_sections(response.content)["buildings"]
    assert [r[0] for r in rows] == [b.id for b in month.site.buildings]
    for row in rows:
        assert row[2:] == _service_cells(month, row[0]), row[0]
    assert rows[2][2:] == ["4", "1", "43.3", "1080.0", "75.00", "75.00"]  # b03, by hand


def test_the_pdf_holds_them_too_in_both_languages(month: Api) -> None:
    texts = {}
    for lang in ("en", "zh"):
        response = month.get(ROUTE, "admin", params={**PERIOD_PARAMS, "lang": lang})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"].endswith(f'-{lang}.pdf"')
        pages = PdfReader(io.BytesIO(response.content)).pages
        texts[lang] = " ".join(" ".join(p.extract_text() for p in pages).split())
    for building in month.site.buildings:
        # The building's row of the table: id, name and the service route's figures.
        row = " ".join([building.id, building.name, *_service_cells(month, building.id)])
        assert row in texts["en"], row
        assert row in texts["zh"], row
    assert "Owners' meeting report" in texts["en"]
    assert "业主大会报告" in texts["zh"]


def test_a_steward_gets_the_report_of_their_buildings_only(month: Api) -> None:
    response = month.get(ROUTE, "steward", params={**PERIOD_PARAMS, "format": "csv"})
    assert response.status_code == 200, response.text
    sections = _csv_sections(response.content)
    assert [r[0] for r in sections["buildings"]] == ["b03", "b05"]
    assert {r[0] for r in sections["cars"]} == {"b03", "b05"}
    assert ["Buildings", "b03, b05"] in sections["report"]


def test_the_compliance_section_holds_the_logbooks_counts(month: Api) -> None:
    add_maintenance(month.store, month.site, month.context.plans)
    response = month.get(ROUTE, "steward", params={**PERIOD_PARAMS, "format": "csv"})
    assert response.status_code == 200, response.text
    sections = _csv_sections(response.content)
    plans = {r[0]: r[1:] for r in sections["maintenance"]}
    # every (days), devices, done in the period, done, due, overdue (b03 and b05)
    assert plans["EN 81-28 alarm system self-test"] == ["3", "8", "7", "5", "1", "2"]
    assert plans["Elevator maintenance (every 15 days)"] == ["15", "8", "5", "5", "1", "2"]
    assert len(sections["overdue_plans"]) == 11
    assert ["b03", "b03-u1-el2", "Elevator 2", "EN 81-28 alarm system self-test"] in [
        r[:4] for r in sections["overdue_plans"]
    ]
    # The same statuses as the buildings' logbooks at the period's last moment.
    logbook = {"done": 0, "due": 0, "overdue": 0}
    for building in ("b03", "b05"):
        params = {"start_ms": P0, "end_ms": P0 + PERIOD - 1}
        got = month.get(f"/api/v1/buildings/{building}/compliance", "steward", params=params)
        assert got.status_code == 200, got.text
        for status, n in got.json()["counts"].items():
            logbook[status] += n
    assert [sum(int(r[i]) for r in plans.values()) for i in (3, 4, 5)] == [
        logbook["done"],
        logbook["due"],
        logbook["overdue"],
    ]

    zh = month.get(ROUTE, "steward", params={**PERIOD_PARAMS, "format": "pdf", "lang": "zh"})
    assert zh.status_code == 200, zh.text
    pages = PdfReader(io.BytesIO(zh.content)).pages
    text = " ".join(" ".join(p.extract_text() for p in pages).split())
    assert "维保计划执行情况" in text
    assert "EN 81-28 紧急报警装置自检 3 8 7 5 1 2" in text


def test_who_may_have_it(month: Api) -> None:
    forbidden = month.get(ROUTE, "tech", params=PERIOD_PARAMS)
    assert forbidden.status_code == 403
    assert "only admin, dispatcher, steward" in forbidden.json()["detail"]
    assert month.client.get(ROUTE, params=PERIOD_PARAMS).status_code == 401


def test_without_a_period_it_is_last_month_in_the_sites_time_zone(month: Api) -> None:
    response = month.get(ROUTE, "dispatcher", params={"format": "csv"})
    assert response.status_code == 200, response.text
    # NOW is in October 2026 (Shanghai): the report is of September.
    assert "-2026-09-01-2026-09-30-en.csv" in response.headers["content-disposition"]


@pytest.mark.parametrize(
    ("params", "loc", "message"),
    [
        ({"lang": "fr"}, "lang", "Input should be 'en' or 'zh'"),
        ({"format": "docx"}, "format", "Input should be 'pdf' or 'csv'"),
        ({"start_ms": P0}, "end_ms", "start_ms and end_ms go together"),
        ({"end_ms": P0}, "start_ms", "start_ms and end_ms go together"),
        ({"start_ms": P0, "end_ms": P0}, "end_ms", "end_ms must be after start_ms"),
        ({"start_ms": 0, "end_ms": P0}, "end_ms", "at most 366 days"),
        ({"start_ms": -1, "end_ms": P0}, "start_ms", "greater than or equal to 0"),
        ({"start_ms": "soon", "end_ms": P0}, "start_ms", "valid integer"),
    ],
)
def test_bad_parameters_are_named(
    month: Api, params: dict[str, Any], loc: str, message: str
) -> None:
    response = month.get(ROUTE, "dispatcher", params=params)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", loc]
    assert message in error["msg"]
