"""The owners' report as titled tables of text cells, in one language.

The PDF and the CSV both render these tables, so the two can never show different numbers.
Cells hold plain numbers (units are in the column heads): percentages with two decimals,
minutes and hours with one, "-" where there is nothing to measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from alerts.owners_report import OwnersReport
from alerts.owners_words import Language, word
from alerts.service import ServiceFigures

NONE: Final = "-"


@dataclass(frozen=True, slots=True)
class ReportTable:
    key: str
    """Which section (`summary`, `buildings`, ...): the CSV's first column."""
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def percent(share: float | None) -> str:
    return NONE if share is None else f"{share * 100:.2f}"


def minutes(seconds: float | None) -> str:
    return NONE if seconds is None else f"{seconds / 60:.1f}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}"


def local_date(ms: int, timezone: str) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d")


def local_time(ms: int, timezone: str) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M")


def period_text(report: OwnersReport) -> str:
    """The period as its first and last day (the end is exclusive: the day before it)."""
    first = local_date(report.start_ms, report.timezone)
    last = local_date(report.end_ms - 1, report.timezone)
    return first if first == last else f"{first} – {last}"


def _faults(figures: ServiceFigures) -> int:
    return sum(figures.faults_by_kind.values())


def _summary(report: OwnersReport, lang: Language) -> ReportTable:
    e = report.estate
    rows = [
        (word(lang, "work_orders"), str(e.work_orders)),
        (word(lang, "faults"), str(_faults(e))),
        (word(lang, "residents_reports"), str(e.reports)),
        (word(lang, "mean_response_min"), minutes(e.mean_time_to_acknowledge_s)),
        (word(lang, "mean_repair_min"), minutes(e.mean_time_to_resolve_s)),
        (word(lang, "compliance_pct"), percent(e.sla.compliance)),
        (word(lang, "availability_pct"), percent(e.elevator_availability)),
        (word(lang, "open_count"), str(len(report.open_issues))),
        (word(lang, "overdue_plans_count"), str(len(report.maintenance.overdue))),
    ]
    return ReportTable(
        "summary", word(lang, "summary"), (word(lang, "metric"), word(lang, "value")), tuple(rows)
    )


def _buildings(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("building", "name", "work_orders", "residents_reports", "mean_response_min",
               "mean_repair_min", "compliance_pct", "availability_pct")  # fmt: skip
    rows = tuple(
        (
            b.figures.building_id,
            b.name,
            str(b.figures.work_orders),
            str(b.figures.reports),
            minutes(b.figures.mean_time_to_acknowledge_s),
            minutes(b.figures.mean_time_to_resolve_s),
            percent(b.figures.sla.compliance),
            percent(b.figures.elevator_availability),
        )
        for b in report.buildings
    )
    return ReportTable(
        "buildings", word(lang, "buildings"), tuple(word(lang, c) for c in columns), rows
    )


def _cars(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("building", "device", "car", "car_availability_pct", "downtime_h", "faults")
    rows = tuple(
        (
            c.building_id,
            c.device_id,
            c.name,
            percent(c.availability),
            hours(c.down_s),
            str(c.faults),
        )
        for c in report.cars
    )
    return ReportTable("cars", word(lang, "cars"), tuple(word(lang, c) for c in columns), rows)


def _kinds(report: OwnersReport, lang: Language) -> ReportTable:
    rows = tuple(
        (word(lang, f"kind.{kind}", kind), str(n))
        for kind, n in report.estate.faults_by_kind.items()
    )
    return ReportTable(
        "kinds", word(lang, "kinds"), (word(lang, "kind"), word(lang, "count")), rows
    )


def _sla_row(label: str, f: ServiceFigures) -> tuple[str, ...]:
    return (
        label,
        str(f.work_orders),
        minutes(f.mean_time_to_acknowledge_s),
        minutes(f.mean_time_to_resolve_s),
        str(f.sla.respond_met),
        str(f.sla.respond_missed),
        str(f.sla.resolve_met),
        str(f.sla.resolve_missed),
        percent(f.sla.compliance),
    )


def _sla(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("severity", "work_orders", "mean_response_min", "mean_repair_min", "respond_met",
               "respond_missed", "resolve_met", "resolve_missed", "compliance_pct")  # fmt: skip
    rows = [
        _sla_row(word(lang, f"severity.{s.severity}", s.severity), s.figures)
        for s in report.severities
    ]
    rows.append(_sla_row(word(lang, "total"), report.estate))
    return ReportTable("sla", word(lang, "sla"), tuple(word(lang, c) for c in columns), tuple(rows))


def _reports(report: OwnersReport, lang: Language) -> ReportTable:
    rows = [
        (word(lang, f"outcome.{outcome}", outcome), str(n))
        for outcome, n in report.reports.outcomes.items()
    ]
    rows.append((word(lang, "total"), str(report.reports.total)))
    return ReportTable(
        "reports", word(lang, "reports"), (word(lang, "outcome"), word(lang, "count")), tuple(rows)
    )


def _open(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("order", "building", "device", "severity", "status", "age_h", "order_title")
    rows = tuple(
        (
            f"#{o.id}",
            o.building_id,
            o.device_id or NONE,
            word(lang, f"severity.{o.severity}", o.severity),
            word(lang, f"status.{o.status}", o.status),
            hours(o.age_s),
            (o.title_zh or o.title) if lang == "zh" else o.title,
        )
        for o in report.open_issues
    )
    return ReportTable("open", word(lang, "open"), tuple(word(lang, c) for c in columns), rows)


def days(seconds: float) -> str:
    return f"{seconds / 86_400:.1f}"


def _plans(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("plan", "every_d", "devices", "done_in_period", "plan.done", "plan.due",
               "plan.overdue")  # fmt: skip
    rows = tuple(
        (
            (p.title_zh or p.title) if lang == "zh" else p.title,
            f"{p.every_s / 86_400:g}",
            str(p.devices),
            str(p.done_in_period),
            str(p.done),
            str(p.due),
            str(p.overdue),
        )
        for p in report.maintenance.plans
    )
    return ReportTable(
        "maintenance", word(lang, "maintenance"), tuple(word(lang, c) for c in columns), rows
    )


def _overdue_plans(report: OwnersReport, lang: Language) -> ReportTable:
    columns = ("building", "device", "device_name", "plan", "due_since", "overdue_d")
    as_of = report.maintenance.as_of_ms
    rows = tuple(
        (
            o.building_id,
            o.device_id,
            o.device_name,
            (o.title_zh or o.title) if lang == "zh" else o.title,
            local_time(o.due_ms, report.timezone),
            days((as_of - o.due_ms) / 1000),
        )
        for o in report.maintenance.overdue
    )
    return ReportTable(
        "overdue_plans", word(lang, "overdue_plans"), tuple(word(lang, c) for c in columns), rows
    )


SECTIONS: Final[tuple[Callable[[OwnersReport, Language], ReportTable], ...]] = (
    _summary,
    _buildings,
    _cars,
    _kinds,
    _sla,
    _reports,
    _open,
    _plans,
    _overdue_plans,
)
"""The report's sections in order: each a function from the report to its table."""


def report_tables(report: OwnersReport, lang: Language) -> list[ReportTable]:
    return [section(report, lang) for section in SECTIONS]


def heading_lines(report: OwnersReport, lang: Language) -> list[tuple[str, str]]:
    """(label, value) lines under the report's title."""
    return [
        (word(lang, "estate"), f"{report.site_name} ({report.site_id})"),
        (word(lang, "period"), period_text(report)),
        (word(lang, "time_zone"), report.timezone),
        (word(lang, "buildings_in"), ", ".join(b.figures.building_id for b in report.buildings)),
        (word(lang, "generated"), local_time(report.generated_ms, report.timezone)),
        (word(lang, "plans_as_of"), local_time(report.maintenance.as_of_ms, report.timezone)),
    ]
