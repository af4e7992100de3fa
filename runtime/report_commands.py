"""The `facility report` command: the owners' meeting report of the site over a period, as PDF
and/or CSV files (parse the period, read the orders and the maintenance plans, write the files;
the figures and the rendering are `alerts.owners_*`)."""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path

from alerts.maintenance.plans import load_plans
from alerts.maintenance.settings import MaintenanceSettings
from alerts.owners_files import FORMATS, Format, file_name, render
from alerts.owners_report import day_range_ms, month_range_ms, owners_report, previous_month_ms
from alerts.store import WorkOrderStore
from db.engine import make_engine
from facility.clock import now_ms
from facility.errors import FacilityError
from facility.portfolio import load_sites
from facility.site import Site
from runtime.settings.resolve import Resolved
from runtime.settings.tree import DatabaseSettings, SiteSettings

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReportArgumentError(FacilityError):
    """The period or the output asked for cannot be made (the message says which flag)."""


def parse_day(text: str) -> date:
    """An argparse type: a day as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-03-31") from None


def parse_month(text: str) -> tuple[int, int]:
    """An argparse type: a month as YYYY-MM."""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-03")
    return int(match.group(1)), int(match.group(2))


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--month", type=parse_month, default=None,
                        help="a calendar month, YYYY-MM (default: the previous month)")  # fmt: skip
    parser.add_argument("--from", dest="first", type=parse_day, default=None,
                        help="the first day, YYYY-MM-DD (with --to)")  # fmt: skip
    parser.add_argument("--to", dest="last", type=parse_day, default=None,
                        help="the last day, YYYY-MM-DD, included (with --from)")  # fmt: skip
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="the report's language (default en)")  # fmt: skip
    parser.add_argument("--format", dest="formats", choices=(*FORMATS, "both"), default="both",
                        help="pdf, csv or both (default both)")  # fmt: skip
    parser.add_argument("--site-id", dest="site_id", default=None,
                        help="the estate to report on: needed for a portfolio of several "
                             "sites (its months and dates are in its own time zone)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None,
                        help="the file to write (one format), or a directory (default: the "
                             "current directory; files named after site and period)")  # fmt: skip


def period_ms(args: argparse.Namespace, site: Site, now: int) -> tuple[int, int]:
    """[start, end) in ms: a month, a day range (in the site's time zone), or last month."""
    if args.month is not None and (args.first is not None or args.last is not None):
        raise ReportArgumentError("give either --month or --from/--to, not both")
    if (args.first is None) != (args.last is None):
        raise ReportArgumentError("--from and --to go together (the first and the last day)")
    try:
        if args.month is not None:
            year, month = args.month
            return month_range_ms(year, month, site.timezone)
        if args.first is not None:
            return day_range_ms(args.first, args.last, site.timezone)
    except ValueError as exc:
        raise ReportArgumentError(f"--from/--to: {exc}") from None
    return previous_month_ms(now, site.timezone)


def _targets(
    output: Path | None, formats: tuple[Format, ...], names: dict[Format, str]
) -> dict[Format, Path]:
    if output is None:
        return {f: Path(names[f]) for f in formats}
    if output.is_dir():
        return {f: output / names[f] for f in formats}
    if len(formats) > 1:
        raise ReportArgumentError(
            f"--output {output}: both formats need a directory (or give --format pdf|csv)"
        )
    if not output.parent.is_dir():
        raise ReportArgumentError(f"--output {output}: no directory {output.parent}")
    return {formats[0]: output}


def estate(site: Site, site_id: str | None) -> Site:
    """The site a report is of: the one `--site-id` names, or the deployment's only one."""
    if site_id is not None:
        found = next((s for s in site.sites if s.id == site_id), None)
        if found is None:
            known = ", ".join(s.id for s in site.sites)
            raise ReportArgumentError(f"--site-id {site_id}: no such site (the sites: {known})")
        return found
    if len(site.sites) > 1:
        known = ", ".join(s.id for s in site.sites)
        raise ReportArgumentError(f"a report is of one site: give --site-id (one of {known})")
    return site.sites[0]


def cmd_report(args: argparse.Namespace, settings: Resolved) -> int:
    site = estate(load_sites(settings.get(SiteSettings).file), getattr(args, "site_id", None))
    maintenance = settings.get(MaintenanceSettings)
    plans = load_plans(maintenance.plans)  # the logbook's plans: the API's, from the same flags
    now = now_ms()
    start, end = period_ms(args, site, now)
    formats: tuple[Format, ...] = FORMATS if args.formats == "both" else (args.formats,)
    store = WorkOrderStore(make_engine(settings.get(DatabaseSettings).url))
    try:
        store.migrate()
        report = owners_report(
            site, store, start_ms=start, end_ms=end, now_ms=now,
            plans=plans, lead_ms=round(maintenance.lead_s * 1000),
        )  # fmt: skip
    finally:
        store.engine.dispose()
    names = {f: file_name(report, args.lang, f) for f in formats}
    for fmt, path in _targets(args.output, formats, names).items():
        try:
            path.write_bytes(render(report, args.lang, fmt))
        except OSError as exc:
            raise ReportArgumentError(f"--output: cannot write {path}: {exc.strerror}") from None
        print(f"wrote {path}")
    return 0
