"""Every cell of an export is safe to open in a spreadsheet (OWASP's CSV injection rule)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.platform.csv_export import FORMULA_STARTS, csv_writer, safe_cell


@pytest.mark.parametrize(
    ("cell", "written"),
    [("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+7912", "'+7912"),
     ("-A1-B1", "'-A1-B1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
     ("100001", "100001"), ("a=b", "a=b"), ("", ""), (None, ""), (42, "42")],
)  # fmt: skip
def test_a_cell_a_spreadsheet_would_compute_is_written_as_text(cell, written):
    assert safe_cell(cell) == written


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_no_written_cell_starts_a_formula(row):
    out = io.StringIO()
    csv_writer(out).writerow(row)
    [read] = list(csv.reader(io.StringIO(out.getvalue())))
    assert not any(cell.startswith(FORMULA_STARTS) for cell in read)
    assert [cell.removeprefix("'") for cell in read] == [
        cell.removeprefix("'") if not cell.startswith(FORMULA_STARTS) else cell for cell in row
    ]
