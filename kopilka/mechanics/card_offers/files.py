"""A bank's feed as a file: JSON Lines, one message a line, each taken as the online path
takes it (`handlers.take_message`), in the file's order; or the whole file run as a batch
on Dask (`batch_file`).

Taking a file again is safe: a message taken before is counted `already there` (its
transaction id is its idempotency key); a line that can't be taken is rejected with its
line number and why, and the lines after it are taken all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import Engine

from kopilka.imports.csv_rows import CannotImport, CsvRow
from kopilka.imports.handlers import Done, ImportReport, Rejected
from kopilka.kernel.errors import KopilkaError, Unavailable
from kopilka.mechanics.card_offers.batch import run_batch
from kopilka.mechanics.card_offers.feed import Message
from kopilka.mechanics.card_offers.handlers import take_message
from kopilka.mechanics.card_offers.snapshot import world_of
from kopilka.mechanics.card_offers.stored import (
    Refused,
    batch_runner,
    plan,
    read_documents,
    store_batch,
)
from kopilka.platform.http.common import MAX_BODY, read_json

COLUMNS = ("message",)


def import_card_transactions(engine: Engine, program_code: str, path: Path, *,
                             now: Callable[[], datetime],
                             progress: Callable[[int, int], None]) -> ImportReport:  # fmt: skip
    """Take every message of the file at `path`; what became of each line."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise CannotImport(f"{path}: {error.strerror or error}") from None
    report = ImportReport(COLUMNS)
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            report.count(_take(engine, program_code, number, raw, now()))
        progress(number, len(lines))
    return report


def _take(engine: Engine, program_code: str, number: int, raw: bytes,
          now: datetime) -> Done | Rejected:  # fmt: skip
    row = CsvRow(number, {"message": raw.decode("utf-8", "replace")})
    if len(raw) > MAX_BODY:
        return Rejected((row,), "", "payload_too_large", f"the line has {len(raw)} bytes")
    try:
        message = read_json(raw)
    except KopilkaError as error:
        return Rejected((row,), "", error.code, error.detail)
    key = str(message.get("transaction_id", "")) if isinstance(message, dict) else ""
    try:
        _answer, made = take_message(engine, program_code, message, now=now)
    except Unavailable:
        raise  # the database is gone: the command says how far it got
    except KopilkaError as error:
        return Rejected((row,), key, error.code, error.detail)
    return Done.IMPORTED if made else Done.ALREADY_THERE


def batch_file(engine: Engine, program_code: str, path: Path, out: Path, *,
               scheduler: str | None, workers: int, store: bool = False,
               now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """A day's feed file through the offers as a batch on Dask, against the database's
    world as it stands. `store`: its outcome stored as the online path would have left it
    (stored.py); else the reward changes written to `out` (Parquet, in the online path's
    order) and the database left as it was. A summary either way."""
    moment = now or datetime.now(UTC)
    if store:
        if path.suffix == ".parquet":
            raise CannotImport(f"{path}: a stored batch is read from JSON Lines (a message's "
                               "body is what a message sent again is compared with)")  # fmt: skip
        run = batch_runner(scheduler=scheduler, workers=workers)
        return store_batch(engine, program_code, path, now=moment, run=run)
    feed: Path | list[Message]
    refused: list[Refused] = []
    if path.suffix == ".parquet":
        world, feed = world_of(engine, program_code), path
    else:
        documents, unreadable = read_documents(path)
        planned = plan(engine, program_code, documents, moment)
        world, feed = planned.world, planned.admitted.messages()
        refused = sorted(unreadable + planned.admitted.refused, key=lambda item: item.line)
    started = time.perf_counter()
    result = run_batch(world, feed, scheduler=scheduler, workers=workers, collect=False)
    seconds = time.perf_counter() - started
    table = result.change_table()
    pq.write_table(table, str(out))
    return {"messages": result.messages, "matched": result.matched, "claims": result.claims,
            "changes": table.num_rows, "refused": [item.json() for item in refused],
            "digest": result.digest(), "seconds": round(seconds, 2), "out": str(out),
            "stored": False}  # fmt: skip
