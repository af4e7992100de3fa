"""The owners' report as a PDF (reportlab): the same tables as the CSV, with bar charts.

中文 is set in reportlab's built-in CID font STSong-Light (the reader's own Song typeface:
no font file to ship); English in Helvetica, any text with characters beyond Latin-1 (a
building named in Chinese) in STSong-Light too.
"""

from __future__ import annotations

import io
from typing import Any, Final
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from alerts.owners_report import OwnersReport
from alerts.owners_tables import ReportTable, heading_lines, report_tables
from alerts.owners_words import Language, word

CJK_FONT: Final = "STSong-Light"
LATIN_FONT: Final = "Helvetica"
LATIN_BOLD: Final = "Helvetica-Bold"
PAGE: Final = landscape(A4)
MARGIN: Final = 15 * mm
BAR: Final = colors.HexColor("#2f6f9f")
WIDTH: Final = PAGE[0] - 2 * MARGIN


def _register_fonts() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def _font(text: str, lang: Language, *, bold: bool = False) -> str:
    if lang == "zh" or any(ord(ch) > 0xFF for ch in text):
        return CJK_FONT
    return LATIN_BOLD if bold else LATIN_FONT


def _para(text: str, lang: Language, size: float = 8, *, bold: bool = False) -> Paragraph:
    style = ParagraphStyle(
        "cell", fontName=_font(text, lang, bold=bold), fontSize=size, leading=size * 1.25
    )
    return Paragraph(escape(text), style)


def _table(table: ReportTable, lang: Language) -> list[Any]:
    flow: list[Any] = [_para(table.title, lang, 12, bold=True), Spacer(1, 2 * mm)]
    if not table.rows:
        return [*flow, _para(word(lang, "none"), lang, 9), Spacer(1, 5 * mm)]
    data = [[_para(c, lang, 8, bold=True) for c in table.columns]]
    data += [[_para(cell, lang) for cell in row] for row in table.rows]
    grid = Table(data, colWidths=_widths(table), repeatRows=1, hAlign="LEFT")
    grid.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa5b1")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return [*flow, grid, Spacer(1, 5 * mm)]


def _text_width(text: str) -> int:
    """Roughly in Latin letters: a CJK character is as wide as two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _widths(table: ReportTable) -> list[float]:
    """Columns as wide as their longest cell (a long title at most 70 letters), scaled to fit
    the page when together they are wider."""
    longest = [
        min(70, max(6, *(_text_width(row[i]) for row in table.rows)))
        for i in range(len(table.columns))
    ]
    heads = [min(16, _text_width(c)) for c in table.columns]
    want = [max(a, b) * 4.6 + 8 for a, b in zip(longest, heads, strict=True)]
    scale = min(1.0, WIDTH / sum(want))
    return [w * scale for w in want]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _chart(title: str, labels: list[str], values: list[float], lang: Language) -> Drawing:
    """A bar chart of one series, labelled below each bar."""
    height = 62 * mm
    drawing = Drawing(WIDTH, height)
    drawing.add(String(0, height - 10, title, fontName=_font(title, lang, bold=True), fontSize=10))
    chart = VerticalBarChart()
    chart.x, chart.y = 12 * mm, 14 * mm
    chart.width, chart.height = WIDTH - 16 * mm, height - 30 * mm
    chart.data = [values or [0.0]]
    chart.bars[0].fillColor = BAR
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName = LATIN_FONT
    chart.valueAxis.labels.fontSize = 7
    axis = chart.categoryAxis
    axis.categoryNames = labels or [""]
    axis.labels.fontName = (
        CJK_FONT if any(_font(s, lang) == CJK_FONT for s in labels) else (LATIN_FONT)
    )
    axis.labels.fontSize = 6 if len(labels) > 12 else 8
    if len(labels) > 12:
        axis.labels.angle = 60
        axis.labels.boxAnchor = "ne"
    drawing.add(chart)
    return drawing


CHARTS: Final = {
    "cars": ("availability_chart", 1, 3),
    "kinds": ("kinds_chart", 0, 1),
    "reports": ("reports_chart", 0, 1),
}
"""Which tables get a bar chart: (its title, the label column, the value column)."""


def _chart_for(table: ReportTable, lang: Language) -> list[Any]:
    if table.key not in CHARTS:
        return []
    title, label, value = CHARTS[table.key]
    rows = table.rows[:-1] if table.key == "reports" else table.rows  # not the total
    if not rows:
        return []
    labels = [row[label] for row in rows]
    return [_chart(word(lang, title), labels, [_number(row[value]) for row in rows], lang),
            Spacer(1, 4 * mm)]  # fmt: skip


def render_pdf(report: OwnersReport, lang: Language) -> bytes:
    _register_fonts()
    tables = report_tables(report, lang)
    buffer = io.BytesIO()
    title = f"{word(lang, 'title')}: {report.site_name}"
    doc = SimpleDocTemplate(
        buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
        bottomMargin=MARGIN, title=title, author="Facility Monitor", invariant=1,
    )  # fmt: skip
    flow: list[Any] = [_para(title, lang, 16, bold=True), Spacer(1, 3 * mm)]
    for label, value in heading_lines(report, lang):
        flow.append(_para(f"{label}: {value}", lang, 9))
    flow.append(Spacer(1, 5 * mm))
    for table in tables:
        flow.extend(_table(table, lang))
        flow.extend(_chart_for(table, lang))
    doc.build(flow)
    return buffer.getvalue()
