"""The owners' report as CSV: the PDF's tables, one block each, with the same cells.

Each block is a header row and its rows, every row starting with the section's key so a
spreadsheet can filter by it; blocks are separated by an empty line. UTF-8 with a byte-order
mark, so spreadsheet programs read 中文 right.
"""

from __future__ import annotations

import csv
import io

from alerts.owners_report import OwnersReport
from alerts.owners_tables import heading_lines, report_tables
from alerts.owners_words import Language, word


def render_csv(report: OwnersReport, lang: Language) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    section = word(lang, "section")
    writer.writerow([section, word(lang, "metric"), word(lang, "value")])
    writer.writerow(["report", word(lang, "title"), ""])
    for label, value in heading_lines(report, lang):
        writer.writerow(["report", label, value])
    for table in report_tables(report, lang):
        writer.writerow([])
        writer.writerow([section, *table.columns])
        for row in table.rows:
            writer.writerow([table.key, *row])
    return out.getvalue().encode("utf-8-sig")
