"""A bank's feed as a file: JSON Lines, one message a line, each taken as the online path
takes it (`handlers.take_message`), in the file's order.

Taking a file again is safe: a message taken before is counted `already there` (its
transaction id is its idempotency key); a line that can't be taken is rejected with its
line number and why, and the lines after it are taken all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from kopilka.imports.csv_rows import CannotImport, CsvRow
from kopilka.imports.handlers import Done, ImportReport, Rejected
from kopilka.kernel.errors import KopilkaError, Unavailable
from kopilka.mechanics.card_offers.handlers import take_message
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
