"""Receipts put in the order they happened, in bounded memory.

Runs of RUN_RECEIPTS receipts are sorted in memory; a file with more is written to a
scratch directory in sorted runs (JSON lines, values as the file's text) and merged, so
memory holds one run — and one receipt of each run while merging — at a time.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from kopilka.imports.csv_rows import CsvRow

__all__ = ["RUN_RECEIPTS", "ReceiptLines", "time_ordered"]

RUN_RECEIPTS = 10_000  # receipts sorted in memory at a time; more are spilled in sorted runs


@dataclass(frozen=True, slots=True)
class ReceiptLines:
    """One receipt's rows of the file, and the moment it happened."""

    key: tuple[str, str]  # (location, receipt_id)
    seq: int  # its place in the file: receipts of one moment keep the file's order
    at: datetime
    rows: tuple[CsvRow, ...]


def time_ordered(
    receipts: Iterator[ReceiptLines], scratch: Path
) -> tuple[Iterator[ReceiptLines], int]:
    """All `receipts`, by time and then by place in the file, and how many there are;
    `receipts` is read to its end before the first is returned."""
    runs: list[Path] = []
    count = 0
    while run := sorted(islice(receipts, RUN_RECEIPTS), key=_time_order):
        count += len(run)
        if not runs and len(run) < RUN_RECEIPTS:  # the whole file in one run: nothing to spill
            return iter(run), count
        runs.append(_spill(run, scratch / f"run-{len(runs)}.jsonl"))
    return heapq.merge(*(_unspill(path) for path in runs), key=_time_order), count


def _time_order(receipt: ReceiptLines) -> tuple[datetime, int]:
    return receipt.at, receipt.seq


def _spill(run: list[ReceiptLines], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for receipt in run:
            rows = [[row.line, row.extra, row.cells] for row in receipt.rows]
            record = {"key": receipt.key, "seq": receipt.seq, "at": receipt.at.isoformat(),
                      "rows": rows}  # fmt: skip
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _unspill(path: Path) -> Iterator[ReceiptLines]:
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            record = json.loads(text)
            rows = tuple(CsvRow(line, cells, extra) for line, extra, cells in record["rows"])
            location, receipt_id = record["key"]
            yield ReceiptLines((location, receipt_id), record["seq"],
                               datetime.fromisoformat(record["at"]), rows)  # fmt: skip
