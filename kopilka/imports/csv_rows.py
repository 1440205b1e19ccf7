"""Reading the CSV files of an import: a header checked against a format, then rows streamed.

A file is read as UTF-8 (with or without the byte-order mark spreadsheets write), in the
`csv` module's strict mode: a quote never closed is an error, not one cell swallowing the
rest of the file. Rows are read again for each pass an import needs, never all at once.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["ENCODING", "REASON_COLUMN", "CannotImport", "CsvRow", "CsvSource"]

ENCODING = "utf-8-sig"  # spreadsheets save UTF-8 with a byte-order mark; plain UTF-8 reads too
REASON_COLUMN = "reason"  # the rejects file's own column: ignored when it is imported again


class CannotImport(Exception):
    """Nothing can be imported: the file can't be read, its header is wrong, no such program."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # where the row starts in the file; the header is line 1
    cells: dict[str, str]  # column → the cell as written
    extra: int = 0  # non-empty cells beyond the header's columns

    def values(self) -> dict[str, str]:
        """The filled cells, trimmed: an empty cell is a value not given."""
        return {
            column: cell.strip()
            for column, cell in self.cells.items()
            if cell.strip() and column != REASON_COLUMN
        }


class CsvSource:
    """A CSV file read row by row, as often as needed; its header checked on opening."""

    def __init__(self, path: Path, *, known: Sequence[str], required: Sequence[str]) -> None:
        self.path = path
        self.columns = self._header((*known, REASON_COLUMN), required)

    def rows(self) -> Iterator[CsvRow]:
        """The data rows, blank ones skipped."""
        with self._open() as handle:
            # strict: a quote never closed is refused, not read as one cell to the end of file
            reader = csv.reader(handle, strict=True)
            end = 0  # the last line of the last row read: the next row starts after it
            try:
                next(reader)  # the header, checked on opening
                end = reader.line_num
                for cells in reader:
                    start, end = end + 1, reader.line_num
                    if any(cell.strip() for cell in cells):
                        yield self._row(start, cells)
            except (csv.Error, UnicodeDecodeError) as error:
                raise self._unreadable(end + 1, error) from None

    def _row(self, line: int, cells: list[str]) -> CsvRow:
        width = len(self.columns)
        extra = sum(1 for cell in cells[width:] if cell.strip())
        padded = (cells + [""] * width)[:width]  # a short row: its last cells are empty
        return CsvRow(line, dict(zip(self.columns, padded, strict=True)), extra)

    def _header(self, known: Sequence[str], required: Sequence[str]) -> tuple[str, ...]:
        with self._open() as handle:
            try:
                header = next(csv.reader(handle, strict=True), [])
            except (csv.Error, UnicodeDecodeError) as error:
                raise self._unreadable(1, error) from None
        columns = tuple(cell.strip().lower() for cell in header)
        if not any(columns):
            raise CannotImport(f"{self.path}: no header row; its first line names the columns "
                               f"({', '.join(required or known[:4])}, …)")  # fmt: skip
        for number, column in enumerate(columns, 1):
            self._check_column(number, column, columns, known)
        missing = [column for column in required if column not in columns]
        if missing:
            raise CannotImport(f"{self.path}: missing column {', '.join(map(repr, missing))}")
        return columns

    def _check_column(
        self, number: int, column: str, columns: tuple[str, ...], known: Sequence[str]
    ) -> None:
        if not column:
            raise CannotImport(f"{self.path}: column {number} of the header has no name")
        if column not in known:
            guess = difflib.get_close_matches(column, known, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else f"known: {', '.join(known)}"
            raise CannotImport(f"{self.path}: unknown column {column!r}; {hint}")
        if columns.index(column) != number - 1:
            raise CannotImport(f"{self.path}: column {column!r} appears twice")

    def _open(self) -> TextIO:
        try:
            return self.path.open(encoding=ENCODING, newline="")
        except OSError as error:
            raise CannotImport(f"{self.path}: {error.strerror or error}") from None

    def _unreadable(self, line: int, error: Exception) -> CannotImport:
        if isinstance(error, UnicodeDecodeError):
            return CannotImport(f"{self.path}: not UTF-8 text (near line {line}); "
                                "save it as UTF-8 and import it again")  # fmt: skip
        return CannotImport(f"{self.path}, line {line}: {error}")
