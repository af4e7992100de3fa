"""The owners' report: figures of hand-built orders with known times (on SQLite and
PostgreSQL), maintenance-plan compliance from hand-built passes and technicians' records, the
PDF read back with pypdf in both languages, the CSV, and the periods."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import pytest
from pypdf import PdfReader

from alerts.maintenance.plans import load_plans
from alerts.owners_csv import render_csv
from alerts.owners_maintenance import OverduePlan, PlanCompliance
from alerts.owners_pdf import render_pdf
from alerts.owners_report import (
    OwnersReport,
    day_range_ms,
    month_range_ms,
    owners_report,
    previous_month_ms,
)
from alerts.owners_words import WORDS, Language
from alerts.store import WorkOrderStore
from facility.site import Site
from tests.api_support import new_store
from tests.fakes import FakeClock
from tests.owners_support import (
    DAY,
    HOUR,
    LEAD_MS,
    MINUTE,
    NOW,
    P0,
    PERIOD,
    add_maintenance,
    add_month_of_orders,
    add_order,
)

H = 3600.0


@pytest.fixture
def store(db_url: str) -> Iterator[WorkOrderStore]:
    store = new_store(db_url, FakeClock(NOW))
    try:
        yield store
    finally:
        store.engine.dispose()


@pytest.fixture
def report(store: WorkOrderStore, demo_site: Site) -> OwnersReport:
    add_month_of_orders(store, demo_site)
    chosen = [demo_site.building_by_id["b03"], demo_site.building_by_id["b05"]]
    return owners_report(
        demo_site, store, start_ms=P0, end_ms=P0 + PERIOD, now_ms=NOW, buildings=chosen,
        plans=load_plans(), lead_ms=LEAD_MS,
    )  # fmt: skip


def test_figures_per_building_from_known_orders(report: OwnersReport) -> None:
    b03, b05 = (b.figures for b in report.buildings)
    # b03: trapped (10 min, 2 h), levelling (never answered), a report (1 h, 2 h), a lamp
    # (1 h, 50 h); the order after the period is not in it.
    assert (b03.work_orders, b03.reports) == (4, 1)
    assert b03.mean_time_to_acknowledge_s == pytest.approx((10 + 60 + 60) * 60 / 3)
    assert b03.mean_time_to_resolve_s == pytest.approx((2 * H + 2 * H + 50 * H) / 3)
    assert (b03.sla.compliant, b03.sla.breached, b03.sla.pending) == (3, 1, 0)
    assert b03.sla.compliance == pytest.approx(0.75)
    # el1 down 2 h, el2 from 2 h to the end (238 h): of 4 cars x 240 h.
    assert b03.elevator_availability == pytest.approx(1 - 240 / 960)
    assert b03.faults_by_kind == {"elevator": 2, "lighting": 1}
    # b05: a gate (30 min, 1 h), a cancelled and an open report, both past their respond-by;
    # a car down for the period's first hour from an order filed before it.
    assert (b05.work_orders, b05.reports) == (3, 2)
    assert b05.mean_time_to_acknowledge_s == pytest.approx(30 * 60)
    assert b05.mean_time_to_resolve_s == pytest.approx(H)
    assert (b05.sla.compliant, b05.sla.breached) == (1, 2)
    assert b05.elevator_availability == pytest.approx(1 - 1 / 960)
    assert b05.faults_by_kind == {"gate": 1}


def test_estate_cars_severities_reports_and_open_issues(report: OwnersReport) -> None:
    e = report.estate
    assert (e.work_orders, e.reports) == (7, 3)
    assert e.mean_time_to_acknowledge_s == pytest.approx((10 + 60 + 30 + 60) * 60 / 4)
    assert e.mean_time_to_resolve_s == pytest.approx((2 * H + 2 * H + H + 50 * H) / 4)
    assert e.sla.compliance == pytest.approx(4 / 7)
    assert e.elevator_availability == pytest.approx(1 - 241 / 1920)
    assert e.faults_by_kind == {"elevator": 2, "gate": 1, "lighting": 1}

    cars = {c.device_id: c for c in report.cars}
    assert len(cars) == 8
    assert cars["b03-u1-el1"].availability == pytest.approx(1 - 2 / 240)
    assert cars["b03-u1-el1"].down_s == pytest.approx(2 * H)
    assert cars["b03-u1-el1"].faults == 1
    assert cars["b03-u1-el2"].down_s == pytest.approx(238 * H)
    assert cars["b05-u2-el1"].availability == pytest.approx(1 - 1 / 240)
    assert cars["b05-u2-el1"].faults == 0  # filed before the period
    assert cars["b03-u2-el1"].availability == 1.0  # its fault came after the period
    assert cars["b03-u1-el1"].name == "Building 3 Unit 1 / Elevator 1"

    by_severity = {s.severity: s.figures for s in report.severities}
    assert list(by_severity) == ["critical", "major", "minor", "warning"]
    assert by_severity["critical"].work_orders == 1
    assert by_severity["critical"].sla.compliance == 1.0
    assert by_severity["major"].sla.compliance == 0.0
    assert by_severity["minor"].work_orders == 4
    assert by_severity["minor"].sla.compliance == pytest.approx(0.5)
    assert by_severity["warning"].mean_time_to_resolve_s == pytest.approx(50 * H)

    assert report.reports.total == 3
    assert report.reports.outcomes == {"cancelled": 1, "no_fault_found": 1, "still_open": 1}
    # Open at the end: the levelling order, the open report, the lamp (resolved afterwards);
    # most severe first.
    issues = [(o.severity, o.age_s) for o in report.open_issues]
    assert issues == [("major", 238 * H), ("minor", 231 * H), ("warning", 40 * H)]
    assert report.open_issues[0].title_zh == "平层误差超过 20 mm：Elevator 2"


def test_a_routine_visit_is_neither_a_call_nor_an_open_issue(
    store: WorkOrderStore, demo_site: Site
) -> None:
    add_month_of_orders(store, demo_site)
    chosen = [demo_site.building_by_id["b03"], demo_site.building_by_id["b05"]]

    def build() -> OwnersReport:
        return owners_report(
            demo_site, store, start_ms=P0, end_ms=P0 + PERIOD, now_ms=NOW, buildings=chosen,
            plans=load_plans(), lead_ms=LEAD_MS,
        )  # fmt: skip

    before = build()
    add_order(
        store, demo_site, building_id="b03", device_id="b03-u1-el1", severity="major",
        start=P0 + DAY, source="scheduled",
    )  # fmt: skip
    after = build()

    assert (after.estate, after.cars, after.open_issues) == (
        before.estate, before.cars, before.open_issues,
    )  # fmt: skip


def test_a_report_of_the_whole_site_counts_every_building(
    store: WorkOrderStore, demo_site: Site
) -> None:
    add_month_of_orders(store, demo_site)
    whole = owners_report(
        demo_site, store, start_ms=P0, end_ms=P0 + PERIOD, now_ms=NOW,
        plans=load_plans(), lead_ms=LEAD_MS,
    )  # fmt: skip
    assert len(whole.buildings) == len(demo_site.buildings)
    assert whole.estate.work_orders == 7
    elevators = sum(d.kind == "elevator" for d in demo_site.devices)
    assert len(whole.cars) == elevators
    assert whole.estate.elevator_availability == pytest.approx(1 - 241 / (elevators * 240))


def test_an_empty_period_has_no_averages_and_full_availability(
    store: WorkOrderStore, demo_site: Site
) -> None:
    report = owners_report(
        demo_site, store, start_ms=P0, end_ms=P0 + DAY, now_ms=NOW,
        plans=load_plans(), lead_ms=LEAD_MS,
    )  # fmt: skip
    assert report.estate.work_orders == 0
    assert report.estate.mean_time_to_acknowledge_s is None
    assert report.estate.sla.compliance is None
    assert report.estate.elevator_availability == 1.0
    assert report.open_issues == ()
    with pytest.raises(ValueError, match="must end after it starts"):
        owners_report(
            demo_site, store, start_ms=P0, end_ms=P0, now_ms=NOW,
            plans=load_plans(), lead_ms=LEAD_MS,
        )  # fmt: skip


def _pdf_text(data: bytes) -> str:
    """The PDF's text, with line breaks (a wrapped cell) as spaces."""
    assert data.startswith(b"%PDF-")
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]
    return " ".join(" ".join(pages).split())


def test_the_pdf_holds_the_figures_in_english(report: OwnersReport) -> None:
    text = _pdf_text(render_pdf(report, "en"))
    for expected in (
        "Owners' meeting report: Shangri-La Residences",
        "Elevator availability per car", "Faults by kind", "Residents' reports and how they ended",
        "Response and repair times against the SLA", "Open issues at the end of the period",
        "75.00",  # b03's availability and SLA compliance
        "33.33",  # b05's SLA compliance
        "99.90",  # b05's availability (1 - 1/960)
        "57.14",  # the estate's SLA compliance (4 of 7)
        "87.45",  # the estate's availability (1 - 241/1920)
        "43.3",  # b03's mean response (min)
        "1080.0",  # b03's mean repair (min)
        "238.0",  # b03-u1-el2 down (h)
        "No fault found", "Still open", "Levelling off by more than 20 mm: Elevator 2",
    ):  # fmt: skip
        assert expected in text, expected
    assert "平层" not in text


def test_the_pdf_holds_the_figures_in_chinese(report: OwnersReport) -> None:
    text = _pdf_text(render_pdf(report, "zh"))
    for expected in (
        "业主大会报告", "各电梯可用率", "按设备类型的故障", "住户报修及处理结果", "期末未完成事项",
        "75.00", "33.33", "57.14", "87.45", "未发现故障", "仍未完成", "平层误差超过 20 mm",
        "电梯", "严重",
    ):  # fmt: skip
        assert expected in text, expected


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheets read 中文 right with the BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_the_csv_has_the_same_numbers(report: OwnersReport) -> None:
    rows = _csv_rows(render_csv(report, "en"))
    by_section: dict[str, list[list[str]]] = {}
    for row in rows:
        if row and row[0] != "section":
            by_section.setdefault(row[0], []).append(row[1:])
    b03 = next(r for r in by_section["buildings"] if r[0] == "b03")
    assert b03 == ["b03", "Building 3", "4", "1", "43.3", "1080.0", "75.00", "75.00"]
    summary = dict((r[0], r[1]) for r in by_section["summary"])
    assert summary["SLA compliance (%)"] == "57.14"
    assert summary["Elevator availability (%)"] == "87.45"
    assert summary["Open at the end"] == "3"
    car = next(r for r in by_section["cars"] if r[1] == "b03-u1-el2")
    assert car[3:] == ["0.83", "238.0", "1"]
    assert ["Total", "3"] in by_section["reports"]
    assert [r[1] for r in by_section["open"]] == ["b03", "b05", "b03"]
    period = next(r for r in by_section["report"] if r[0] == "Period")
    assert period[1].count("-") == 4  # two dates
    headers = [r for r in rows if r and r[0] == "section"]
    assert len(headers) == 10  # the heading block and nine sections


def _numbers(rows: list[list[str]]) -> list[list[str]]:
    """The numeric cells of every row but the heading block's."""
    return [
        [c for c in row if c.replace(".", "").isdigit()] for row in rows if row[:1] != ["report"]
    ]


def test_the_csv_in_chinese_and_its_numbers_match_the_english_one(report: OwnersReport) -> None:
    en, zh = _csv_rows(render_csv(report, "en")), _csv_rows(render_csv(report, "zh"))
    assert len(en) == len(zh)
    assert zh[0] == [WORDS["zh"][k] for k in ("section", "metric", "value")]
    assert ["reports", "未发现故障", "1"] in zh
    assert _numbers(en) == _numbers(zh)


def test_periods_in_the_sites_time_zone() -> None:
    start, end = month_range_ms(2026, 3, "Asia/Shanghai")
    assert start == 1_772_294_400_000  # 2026-03-01 00:00 +08:00
    assert end - start == 31 * DAY
    dec = month_range_ms(2025, 12, "UTC")
    assert dec[1] - dec[0] == 31 * DAY
    # A month with a daylight-saving change is an hour short.
    march = month_range_ms(2026, 3, "Europe/Berlin")
    assert march[1] - march[0] == 31 * DAY - HOUR
    assert previous_month_ms(start + 5 * DAY, "Asia/Shanghai") == month_range_ms(
        2026, 2, "Asia/Shanghai"
    )
    # Just after midnight of 1 April in Shanghai is still 31 March in UTC: April's previous
    # month is March there.
    assert previous_month_ms(end + MINUTE, "Asia/Shanghai") == (start, end)
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    assert day_range_ms(first, last, "Asia/Shanghai") == (start, end)
    with pytest.raises(ValueError, match="ends"):
        day_range_ms(last, first, "UTC")
    with pytest.raises(ValueError, match="at most 366 days"):
        day_range_ms(first, dt.date(2027, 3, 2), "UTC")


# -- maintenance-plan compliance ---------------------------------------------------------------


def _with_plans(store: WorkOrderStore, site: Site, *, now_ms: int = NOW) -> OwnersReport:
    plans = load_plans()
    add_maintenance(store, site, plans)
    chosen = [site.building_by_id["b03"], site.building_by_id["b05"]]
    return owners_report(
        site, store, start_ms=P0, end_ms=P0 + PERIOD, now_ms=now_ms, buildings=chosen,
        plans=plans, lead_ms=LEAD_MS,
    )  # fmt: skip


ALARM = "EN 81-28 alarm system self-test"
ALARM_ZH = "EN 81-28 紧急报警装置自检"


def test_compliance_per_plan_at_the_end_of_the_period(
    store: WorkOrderStore, demo_site: Site
) -> None:
    figures = _with_plans(store, demo_site).maintenance
    assert figures.as_of_ms == P0 + PERIOD - 1
    assert figures.lead_s == 2 * 86_400
    by_plan = {p.plan_id: p for p in figures.plans}
    assert list(by_plan) == [  # plan-file order; no pump in b03 or b05
        "elevator.maintenance",
        "elevator.alarm_test",
        "lighting.emergency_function",
        "lighting.emergency_duration",
    ]
    assert by_plan["elevator.alarm_test"] == PlanCompliance(
        plan_id="elevator.alarm_test", title=ALARM, title_zh=ALARM_ZH, every_s=72 * H,
        devices=8, done_in_period=7, done=5, due=1, overdue=2,
    )  # fmt: skip
    counts = {
        p.plan_id: (p.devices, p.done_in_period, p.done, p.due, p.overdue) for p in figures.plans
    }
    assert counts == {
        "elevator.maintenance": (8, 5, 5, 1, 2),  # a no_fault_found visit does not count
        "elevator.alarm_test": (8, 7, 5, 1, 2),
        "lighting.emergency_function": (4, 1, 1, 0, 3),
        "lighting.emergency_duration": (4, 0, 0, 0, 4),
    }


def test_the_overdue_list_is_longest_overdue_first(store: WorkOrderStore, demo_site: Site) -> None:
    overdue = _with_plans(store, demo_site).maintenance.overdue
    assert len(overdue) == 11
    assert sorted(o.due_ms for o in overdue) == [o.due_ms for o in overdue]
    assert list(overdue[-4:]) == [
        OverduePlan("b05", "b05-u2-el2", "Elevator 2", "elevator.maintenance",
                    "Elevator maintenance (every 15 days)", "电梯维保（每 15 天）", P0 - 5 * DAY),
        OverduePlan("b05", "b05-u1-el1", "Elevator 1", "elevator.alarm_test", ALARM, ALARM_ZH,
                    P0 + 2 * DAY),
        OverduePlan("b03", "b03-u1-el1", "Elevator 1", "elevator.maintenance",
                    "Elevator maintenance (every 15 days)", "电梯维保（每 15 天）", P0 + 5 * DAY),
        OverduePlan("b03", "b03-u1-el2", "Elevator 2", "elevator.alarm_test", ALARM, ALARM_ZH,
                    P0 + 5 * DAY),  # its pass after the period does not count
    ]  # fmt: skip
    never = {(o.plan_id, o.device_id) for o in overdue[:-4]}
    assert never == {
        ("lighting.emergency_function", "b03-u2-emerg"),
        ("lighting.emergency_function", "b05-u1-emerg"),
        ("lighting.emergency_function", "b05-u2-emerg"),
        *(("lighting.emergency_duration", f"{b}-u{u}-emerg") for b in ("b03", "b05") for u in "12"),
    }


def test_a_period_not_over_yet_counts_as_of_now(store: WorkOrderStore, demo_site: Site) -> None:
    figures = _with_plans(store, demo_site, now_ms=P0 + 4 * DAY).maintenance
    assert figures.as_of_ms == P0 + 4 * DAY
    alarm = next(p for p in figures.plans if p.plan_id == "elevator.alarm_test")
    # Passes so far: b03-u1-el1 at 1 d and b03-u1-el2 at 2 d (both due within the lead time);
    # b05-u1-el1's pass before the period fell due at 2 d; the other five have none yet.
    assert (alarm.done_in_period, alarm.done, alarm.due, alarm.overdue) == (2, 0, 2, 6)


def test_compliance_in_the_pdf_in_both_languages(store: WorkOrderStore, demo_site: Site) -> None:
    report = _with_plans(store, demo_site)
    en = _pdf_text(render_pdf(report, "en"))
    for expected in (
        "Maintenance plan compliance", "Maintenance overdue at the end of the period",
        "Maintenance status as of: 2026-",
        f"{ALARM} 3 8 7 5 1 2",  # every (days), devices, done in the period, done, due, overdue
        "Elevator maintenance (every 15 days) 15 8 5 5 1 2",
        "Emergency lighting: annual duration test 365 4 0 0 0 4",
        # b03-u1-el2's alarm test, overdue since P0 + 5 d (08:00 in Shanghai), 5 days before
        # the end of the period.
        f"b03 b03-u1-el2 Elevator 2 {ALARM} {_local(P0 + 5 * DAY)} 5.0",
        f"b05 b05-u1-el1 Elevator 1 {ALARM} {_local(P0 + 2 * DAY)} 8.0",
    ):  # fmt: skip
        assert expected in en, expected
    zh = _pdf_text(render_pdf(report, "zh"))
    for expected in (
        "维保计划执行情况", "期末逾期的维保", f"{ALARM_ZH} 3 8 7 5 1 2",
        "电梯维保（每 15 天） 15 8 5 5 1 2", f"b03 b03-u1-el2 Elevator 2 {ALARM_ZH}",
    ):  # fmt: skip
        assert expected in zh, expected


def _local(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC) + dt.timedelta(hours=8)
    return moment.strftime("%Y-%m-%d %H:%M")


def test_compliance_in_the_csv_in_both_languages(store: WorkOrderStore, demo_site: Site) -> None:
    report = _with_plans(store, demo_site)
    languages: tuple[tuple[Language, str], ...] = (("en", ALARM), ("zh", ALARM_ZH))
    for lang, alarm in languages:
        rows = _csv_rows(render_csv(report, lang))
        plans = [r[1:] for r in rows if r[:1] == ["maintenance"]]
        assert [alarm, "3", "8", "7", "5", "1", "2"] in plans
        assert len(plans) == 4
        overdue = [r[1:] for r in rows if r[:1] == ["overdue_plans"]]
        assert len(overdue) == 11
        assert overdue[-1] == [
            "b03", "b03-u1-el2", "Elevator 2", alarm, _local(P0 + 5 * DAY), "5.0"
        ]  # fmt: skip
        summary = [r[1:] for r in rows if r[:1] == ["summary"]]
        assert [WORDS[lang]["overdue_plans_count"], "11"] in summary
    header = next(r for r in _csv_rows(render_csv(report, "zh")) if "计划" in r)
    assert header == ["部分", "计划", "周期（天）", "设备数", "期内完成", "已完成", "待办", "逾期"]
