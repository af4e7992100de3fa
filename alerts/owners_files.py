"""The owners' report as files: a format's renderer, media type and file name, so the command
and the API name and make them alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from alerts.owners_csv import render_csv
from alerts.owners_report import OwnersReport
from alerts.owners_tables import local_date
from alerts.owners_words import Language

Format = Literal["pdf", "csv"]
FORMATS: Final[tuple[Format, ...]] = ("pdf", "csv")
MEDIA_TYPES: Final[dict[Format, str]] = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


def _render_pdf(report: OwnersReport, lang: Language) -> bytes:
    # reportlab loads on the first PDF: every `facility` process imports this module through
    # the CLI, and a gateway or simulator never draws one.
    from alerts.owners_pdf import render_pdf  # noqa: PLC0415

    return render_pdf(report, lang)


_RENDERERS: Final[dict[Format, Callable[[OwnersReport, Language], bytes]]] = {
    "pdf": _render_pdf,
    "csv": render_csv,
}


def render(report: OwnersReport, lang: Language, fmt: Format) -> bytes:
    return _RENDERERS[fmt](report, lang)


def file_name(report: OwnersReport, lang: Language, fmt: Format) -> str:
    """`owners-report-<site>-<first day>-<last day>-<lang>.<format>` (ASCII: safe anywhere)."""
    first = local_date(report.start_ms, report.timezone)
    last = local_date(report.end_ms - 1, report.timezone)
    return f"owners-report-{report.site_id}-{first}-{last}-{lang}.{fmt}"
