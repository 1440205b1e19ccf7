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
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import Engine

from kopilka.imports.csv_rows import CannotImport, CsvRow
from kopilka.imports.handlers import Done, ImportReport, Rejected
from kopilka.kernel.errors import KopilkaError, Unavailable
from kopilka.kernel.reading import Reader
from kopilka.mechanics.card_offers import terms
from kopilka.mechanics.card_offers.batch import run_batch
from kopilka.mechanics.card_offers.feed import Message, World
from kopilka.mechanics.card_offers.handlers import take_message
from kopilka.mechanics.card_offers.model import Kind
from kopilka.mechanics.card_offers.snapshot import world_of
from kopilka.platform.db import reading
from kopilka.platform.http.common import MAX_BODY, read_json
from kopilka.programs.handlers import load_program

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


def read_feed_file(path: Path, digits: int) -> tuple[list[Message], list[str]]:
    """A JSON Lines feed as messages in the file's order (`seq`: the line), and why each
    line that is not a message was left out."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise CannotImport(f"{path}: {error.strerror or error}") from None
    messages, problems = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            document = read_json(raw)
        except KopilkaError as error:
            problems.append(f"line {number}: {error.detail}")
            continue
        reader = Reader(document, "", [], terms.MESSAGE_KEYS)
        sent = terms.read_message(reader, digits)
        if sent is None:
            problems.append(f"line {number}: " + "; ".join(str(p) for p in reader.problems))
            continue
        messages.append(Message(number, sent.transaction_id, sent.kind, sent.card, sent.amount,
                                sent.at, sent.scheme, sent.merchant_id, sent.descriptor,
                                sent.mcc, sent.original))  # fmt: skip
    return messages, problems


def _own_originals(world: World, messages: list[Message]) -> tuple[list[Message], list[str]]:
    """The messages without those whose `original` is another card's purchase — which the
    online path refuses (422) — and why each was left out. A purchase's card is known from
    the database (the snapshot's purchases) or from the feed's own earlier messages."""
    card_of = {purchase: token for token, known in world.known.items() for purchase in known}
    kept, problems = [], []
    for message in messages:
        owner = card_of.get(message.original or "")
        if owner is not None and owner != message.card:
            problems.append(f"line {message.seq}: original: transaction "
                            f"{message.original!r} was made with another card")  # fmt: skip
            continue
        if message.kind in (Kind.AUTHORISATION, Kind.CLEARING):
            card_of.setdefault(message.original or message.id, message.card)
        kept.append(message)
    return kept, problems


def batch_file(engine: Engine, program_code: str, path: Path, out: Path, *,
               scheduler: str | None, workers: int) -> dict[str, Any]:  # fmt: skip
    """A day's feed file through the offers as a batch on Dask, against the database's
    world as it stands: the reward changes written to `out` (Parquet, in the online
    path's order) and a summary. The database is not written."""
    world = world_of(engine, program_code)
    with reading(engine) as connection:
        digits = load_program(connection, program_code).calculator.program.money_digits
    if path.suffix == ".parquet":
        feed: Any = path
        problems: list[str] = []
    else:
        feed, problems = read_feed_file(path, digits)
        feed, borrowed = _own_originals(world, feed)
        problems += borrowed
    started = time.perf_counter()
    result = run_batch(world, feed, scheduler=scheduler, workers=workers, collect=False)
    seconds = time.perf_counter() - started
    table = result.change_table()
    pq.write_table(table, str(out))
    return {"messages": result.messages, "matched": result.matched, "claims": result.claims,
            "changes": table.num_rows, "left_out": problems, "digest": result.digest(),
            "seconds": round(seconds, 2), "out": str(out)}  # fmt: skip
