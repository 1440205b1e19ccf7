"""Writing the CSV files Kopilka exports, every cell safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-` or `@` (or a tab or a carriage return, which some
spreadsheets skip before reading one of those) is taken by Excel, LibreOffice and Google
Sheets for a formula — a member's card `=HYPERLINK(…)` or `-A1-B1` would run on the
accountant's machine. Following OWASP's rule on CSV injection, such a cell is written
with a leading apostrophe: the spreadsheet shows the text as it is and computes nothing.
Every export writes through `csv_writer`, so no export can forget it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, made inert when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeCsvWriter:
    """`csv.writer` whose every cell goes through `safe_cell`."""

    def __init__(self, out: TextIO, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])


def csv_writer(out: TextIO, *, lineterminator: str = "\r\n") -> SafeCsvWriter:
    return SafeCsvWriter(out, lineterminator=lineterminator)
