"""A partner's statement as the files its accountant opens: CSV and PDF.

Both show the same document as the API's JSON (`handlers.statement_json`). Amounts are
split into "the partner owes" and "owed to the partner" columns, never signed, so that
no cell begins with a minus a spreadsheet could take for a formula (the CSV goes through
`kopilka.platform.csv_export` all the same). The PDF is drawn with fpdf2 and DejaVu Sans
(Debian's fonts-dejavu-core), which has the Cyrillic a Russian partner's name needs.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF

from kopilka.platform.csv_export import csv_writer

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
HEADER = ("line", "partner owes", "owed to partner")


def _split(amount: str) -> tuple[str, str]:
    """An amount as (owed by the partner, owed to it), each unsigned or empty."""
    value = Decimal(amount)
    if value < 0:
        return "", str(-value)
    return (str(value), "") if value > 0 else ("0", "")


def _rows(statement: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [("opening position", *_split(statement["opening"]))]
    rows += [(line["what"], *_split(line["amount"])) for line in statement["lines"]]
    rows += [("net for the period", *_split(statement["net"])),
             ("closing position", *_split(statement["closing"]))]  # fmt: skip
    return rows


def _facts(statement: dict[str, Any], program_name: str) -> list[tuple[str, str]]:
    points = statement["points"]
    return [
        ("program", program_name), ("partner", statement["partner"]),
        ("period", f"{statement['from']} – {statement['until']}"),
        ("status", statement["status"]), ("statement", statement["id"] or "draft"),
        ("currency", statement["currency"]),
        ("points issued", points["issued"]), ("points redeemed", points["redeemed"]),
        ("earned here, spent elsewhere", points["earned_here_spent_elsewhere"]),
        ("earned elsewhere, spent here", points["earned_elsewhere_spent_here"]),
        ("closed at", statement["closed_at"] or ""), ("closed by", statement["closed_by"] or ""),
    ]  # fmt: skip


def statement_csv(statement: dict[str, Any], program_name: str) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    for name, value in _facts(statement, program_name):
        writer.writerow((name, value))
    writer.writerow(())
    writer.writerow(HEADER)
    for row in _rows(statement):
        writer.writerow(row)
    return out.getvalue()


def _font() -> Path:
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").is_file():
            return folder
    raise RuntimeError("DejaVu Sans is not installed (Debian: apt-get install fonts-dejavu-core)")


def statement_pdf(statement: dict[str, Any], program_name: str) -> bytes:
    folder = _font()
    pdf = FPDF(format="A4")
    pdf.set_creator("Kopilka")
    pdf.set_title(f"Statement {statement['partner']} {statement['from']} – {statement['until']}")
    pdf.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 10, f"Settlement statement — {statement['partner']}", new_x="LMARGIN",
             new_y="NEXT")  # fmt: skip
    pdf.set_font("DejaVu", "", 10)
    for name, value in _facts(statement, program_name):
        pdf.cell(60, 6, name)
        pdf.cell(0, 6, str(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (110, 40, 40)
    pdf.set_font("DejaVu", "B", 10)
    for width, title in zip(widths, HEADER, strict=True):
        pdf.cell(width, 7, title, border=1, align="L" if width == widths[0] else "R")
    pdf.ln()
    pdf.set_font("DejaVu", "", 10)
    for row in _rows(statement):
        for width, text in zip(widths, row, strict=True):
            pdf.cell(width, 7, text, border=1, align="L" if width == widths[0] else "R")
        pdf.ln()
    return bytes(pdf.output())
