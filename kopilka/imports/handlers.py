"""Importing members and historical receipts from CSV files: a migration from another platform.

Each member row goes through `register_member` and each receipt through
`process_purchase` — the services the API uses — in a transaction of its own, so a row
is imported whole or not at all, and an import stopped half-way is simply run again:
what is in place is counted "already there", never written twice. A row the services
refuse is collected with the error's code and detail, not raised: one bad row does not
stop a migration of a million. Only a file that can't be read at all (`CannotImport`)
or a database that stops answering (`Unavailable`) ends an import early.

The formats, the rules for "already there" and the memory bounds: docs/import.md.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from kopilka.checkout.purchases import process_purchase
from kopilka.imports.csv_rows import REASON_COLUMN, CannotImport, CsvRow, CsvSource
from kopilka.imports.receipt_order import ReceiptLines, time_ordered
from kopilka.kernel.errors import (
    Conflict,
    Duplicate,
    InvalidInput,
    KopilkaError,
    NotFound,
    Problem,
    Unavailable,
)
from kopilka.members.handlers import (
    CONSENT_CHANNELS,
    MEMBER_KEYS,
    parse_new_member,
    read_member,
    register_member,
)
from kopilka.programs.handlers import load_program

__all__ = [
    "CannotImport",
    "CsvRow",
    "Done",
    "ImportReport",
    "Rejected",
    "import_members",
    "import_receipts",
    "write_rejects",
]

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (done, total): receipts or rows handled so far

MEMBER_COLUMNS = tuple(key for key in MEMBER_KEYS if key != "consents") + tuple(
    f"consent_{channel}" for channel in CONSENT_CHANNELS
)  # consents as a column per channel: consent_sms, consent_email, …
YES_NO = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
IMPORT_ACTOR = "import"  # who the ledger says moved the points of an imported receipt

# What finds a member again on a second import, strongest first, with its reference prefix.
IDENTITIES = (("card", "card"), ("external_id", "ext"), ("phone", "phone"), ("email", "email"))

RECEIPT_COLUMNS = ("receipt_id", "location", "at", "member", "sku", "qty", "price")
OPTIONAL_RECEIPT_COLUMNS = ("category", "discount", "redeem")
LINE_FIELDS = ("sku", "qty", "price", "category", "discount")
RECEIPT_FIELDS = ("at", "member", "redeem")  # the receipt's own: on its first line, or on all
NO_IDENTITY = (
    "a row needs a card, external_id, phone or email: without one, a second import of the "
    "file would register the member again"
)


class Done(Enum):
    IMPORTED = "imported"
    ALREADY_THERE = "already there"


@dataclass(frozen=True, slots=True)
class Rejected:
    rows: tuple[CsvRow, ...]  # the file's rows it was made of: a member's, or a receipt's lines
    key: str  # what the operator knows it by: the card, or the receipt id and location
    code: str  # the KopilkaError's code
    detail: str

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(row.line for row in self.rows)

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}"


Outcome = Done | Rejected


@dataclass
class ImportReport:
    columns: tuple[str, ...]  # the file's header, for the rejects file
    imported: int = 0
    already_there: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        if isinstance(outcome, Rejected):
            self.rejected.append(outcome)
        elif outcome is Done.IMPORTED:
            self.imported += 1
        else:
            self.already_there += 1


def _silent(_done: int, _total: int) -> None:
    """No progress to show."""


# ---- members ---------------------------------------------------------------------------


def import_members(
    engine: Engine, program_code: str, path: Path, *, now: datetime, progress: Progress = _silent
) -> ImportReport:
    """Register the members of a CSV file (columns: the registration fields of the API)."""
    source = CsvSource(path, known=MEMBER_COLUMNS, required=())
    if not any(column in source.columns for column, _ in IDENTITIES):
        names = ", ".join(column for column, _ in IDENTITIES)
        raise CannotImport(f"{path}: no column finds a member again; give one of {names}")
    _require_program(engine, program_code)
    # A first pass counts the rows for the progress bar and finds a broken file (not
    # UTF-8, a quote never closed) before anything is written.
    total = sum(1 for _ in source.rows())
    report = ImportReport(source.columns)
    _each(source.rows(), total, partial(_import_member, engine, program_code, now), report,
          progress)  # fmt: skip
    return report


def _import_member(engine: Engine, program_code: str, now: datetime, row: CsvRow) -> Outcome:
    values: dict[str, Any] = _with_consents(row.values())
    anchor = _anchor(values)

    def register() -> Done:
        _refuse_extra_cells(row)
        if anchor is None:
            raise InvalidInput([Problem("", NO_IDENTITY)])
        try:
            register_member(engine, program_code, values, now=now)
        except Duplicate as taken:
            _require_same_member(engine, program_code, values, anchor, taken)
            return Done.ALREADY_THERE
        return Done.IMPORTED

    return _outcome((row,), anchor or "—", register)


def _with_consents(values: dict[str, str]) -> dict[str, Any]:
    """`consent_<channel>` cells (yes/no, true/false, 1/0) as the API's `consents` object;
    a cell that is none of these goes through as it is, for the service to refuse by name."""
    member: dict[str, Any] = {k: v for k, v in values.items() if not k.startswith("consent_")}
    consents: dict[str, Any] = {}
    for column, cell in values.items():
        if column.startswith("consent_"):
            consents[column.removeprefix("consent_")] = YES_NO.get(cell.strip().lower(), cell)
    if consents:
        member["consents"] = consents
    return member


def _anchor(values: dict[str, Any]) -> str | None:
    """The reference of the row's strongest identity: `card:…`, else `ext:`, `phone:`, `email:`."""
    for column, prefix in IDENTITIES:
        if column in values:
            return f"{prefix}:{values[column]}"
    return None


def _require_same_member(
    engine: Engine, program_code: str, values: dict[str, str], anchor: str, taken: Duplicate
) -> None:
    """Pass when the member in place is the row's: the row's strongest identity finds them
    and every identity the row gives is theirs. Otherwise raise why the row clashes."""
    existing = _member_or_none(engine, program_code, anchor)
    if existing is not None and existing["status"] == "erased":
        raise Conflict(f"{anchor} is an erased member; an import does not bring them back")
    for column, value in _identities(values).items():
        if existing is not None and existing[column] == value:
            continue
        owner = _member_or_none(engine, program_code, f"{dict(IDENTITIES)[column]}:{value}")
        if owner is not None:
            raise Duplicate(f"{column} {value} is member {owner['id']}'s "
                            f"(card {owner['card']}), not {anchor}'s")  # fmt: skip
        if existing is not None:
            raise Conflict(f"{anchor} is already a member whose {column} is not the row's; "
                           "an import changes no member (update it through the API)")  # fmt: skip
    if existing is None:  # the identity that was taken is free again: a concurrent erasure
        raise taken


def _identities(values: dict[str, str]) -> dict[str, str]:
    """The row's identities as stored: phone in E.164, email lower-cased."""
    new = parse_new_member(values)
    given = {"card": new.card, "external_id": new.external_id, "phone": new.phone,
             "email": new.email}  # fmt: skip
    return {column: value for column, value in given.items() if value is not None}


def _member_or_none(engine: Engine, program_code: str, ref: str) -> dict[str, Any] | None:
    try:
        return read_member(engine, program_code, ref)
    except NotFound:
        return None


# ---- receipts --------------------------------------------------------------------------


def import_receipts(
    engine: Engine, program_code: str, path: Path, *, progress: Progress = _silent
) -> ImportReport:
    """Process the receipts of a CSV file (a row per line) in time order, as they happened."""
    source = CsvSource(path, known=(*RECEIPT_COLUMNS, *OPTIONAL_RECEIPT_COLUMNS),
                       required=RECEIPT_COLUMNS)  # fmt: skip
    _require_program(engine, program_code)
    report = ImportReport(source.columns)
    scattered: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="kopilka-import-") as scratch:
        receipts = _timed_receipts(source, report, scattered)
        ordered, total = time_ordered(receipts, Path(scratch))  # reads the whole file first
        handle = partial(_import_receipt, engine, program_code, scattered)
        _each(ordered, total, handle, report, progress)
    return report


def _timed_receipts(
    source: CsvSource, report: ImportReport, scattered: set[tuple[str, str]]
) -> Iterator[ReceiptLines]:
    """The file's receipts with their time; one without a time is rejected here, since it
    can't be put in order. A receipt whose lines are in two places goes into `scattered`."""
    seen: set[tuple[str, str]] = set()
    for seq, rows in enumerate(_receipt_rows(source.rows())):
        key = _receipt_key(rows[0])
        if key[1]:  # no receipt id: the service refuses it, whatever its lines
            if key in seen:
                scattered.add(key)
            seen.add(key)
        try:
            at = _receipt_time(rows)
        except InvalidInput as error:
            report.count(Rejected(tuple(rows), _receipt_label(key), error.code, _detail(error)))
            continue
        yield ReceiptLines(key, seq, at, tuple(rows))


def _receipt_rows(rows: Iterable[CsvRow]) -> Iterator[list[CsvRow]]:
    """Each receipt's rows: consecutive rows of the same location and receipt_id."""
    group: list[CsvRow] = []
    for row in rows:
        if group and _receipt_key(row) != _receipt_key(group[0]):
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _receipt_key(row: CsvRow) -> tuple[str, str]:
    return row.cells.get("location", "").strip(), row.cells.get("receipt_id", "").strip()


def _receipt_label(key: tuple[str, str]) -> str:
    location, receipt_id = key
    return f"{receipt_id or '—'} at {location or '—'}"


def _receipt_time(rows: Sequence[CsvRow]) -> datetime:
    """The first line's `at`: ISO 8601 with a UTC offset, so receipts of every zone sort."""
    first = rows[0]
    text = first.values().get("at")
    loc = f"line {first.line} at"
    if text is None:
        raise InvalidInput([Problem(loc, "is required (ISO 8601 with offset, "
                                         "e.g. 2026-03-09T16:30:00+03:00)")])  # fmt: skip
    try:
        moment = datetime.fromisoformat(text) if len(text) > len("YYYY-MM-DD") else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput([Problem(loc, f"{text!r} is not an ISO 8601 time with offset "
                                         "(e.g. 2026-03-09T16:30:00+03:00)")])  # fmt: skip
    return moment


def _import_receipt(
    engine: Engine, program_code: str, scattered: set[tuple[str, str]], receipt: ReceiptLines
) -> Outcome:
    def process() -> Done:
        if receipt.key in scattered:  # processing part of it would write a partial receipt
            raise InvalidInput([Problem("", "the lines of this receipt are not together in "
                                            "the file; put them together")])  # fmt: skip
        body = _purchase_body(receipt.rows)
        result = process_purchase(engine, program_code, body, now=receipt.at, actor=IMPORT_ACTOR)
        return Done.IMPORTED if result.created else Done.ALREADY_THERE

    return _outcome(receipt.rows, _receipt_label(receipt.key), process,
                    rename=_line_numbers(receipt.rows))  # fmt: skip


def _purchase_body(rows: Sequence[CsvRow]) -> dict[str, object]:
    """The purchase request of the API, its values the file's text (never floats)."""
    problems: list[Problem] = []
    for row in rows:
        if row.extra:
            problems.append(Problem(f"line {row.line}", _extra_cells(row)))
    location, receipt_id = _receipt_key(rows[0])
    body: dict[str, object] = {"receipt_id": receipt_id, "location": location}
    for name in RECEIPT_FIELDS:
        body[name] = _receipt_value(rows, name, problems)
    body["lines"] = [_line(row) for row in rows]
    if problems:
        raise InvalidInput(problems)
    # values not given are left out, as a point of sale leaves them out of its JSON
    return {name: value for name, value in body.items() if value not in (None, "")}


def _line(row: CsvRow) -> dict[str, str]:
    values = row.values()
    return {name: values[name] for name in LINE_FIELDS if name in values}


def _receipt_value(rows: Sequence[CsvRow], name: str, problems: list[Problem]) -> str | None:
    """A value of the receipt, given on its first line; other lines leave it empty or repeat it."""
    value = rows[0].values().get(name)
    for row in rows[1:]:
        other = row.values().get(name)
        if other is None or other == value:
            continue
        why = (f"{other!r} differs from the receipt's first line ({value!r})" if value
               else f"{other!r} is not on the receipt's first line, where it belongs")  # fmt: skip
        problems.append(Problem(f"line {row.line} {name}", why))
    return value


def _line_numbers(rows: Sequence[CsvRow]) -> Callable[[str], str]:
    """Name a problem of the purchase's `lines[2] (CAP-300).qty` by its file line: `line 14 qty`."""

    def rename(loc: str) -> str:
        match = re.match(r"^lines\[(\d+)\](?: \([^)]*\))?\.?", loc)
        if match is None or int(match[1]) >= len(rows):
            return loc
        return f"line {rows[int(match[1])].line} {loc[match.end() :]}".rstrip()

    return rename


# ---- both ------------------------------------------------------------------------------


def _each(
    items: Iterable[T],
    total: int,
    handle: Callable[[T], Outcome],
    report: ImportReport,
    progress: Progress,
) -> None:
    for done, item in enumerate(items, 1):
        try:
            report.count(handle(item))
        except OperationalError as error:  # the database is gone: no row can succeed now
            first_line = str(error.orig).strip().splitlines()[:1]
            raise Unavailable(
                f"the database stopped answering after {done - 1} of {total}"
                f" ({'; '.join(first_line) or type(error.orig).__name__}); what was imported"
                " stays, and running the same import again picks up where it stopped"
            ) from error
        progress(done, total)


def _outcome(
    rows: tuple[CsvRow, ...],
    key: str,
    work: Callable[[], Done],
    *,
    rename: Callable[[str], str] = str,
) -> Outcome:
    """`work`'s outcome, or the row rejected with why; a row's error never stops the import."""
    try:
        return work()
    except KopilkaError as error:
        return Rejected(rows, key, error.code, _detail(error, rename))
    except (DataError, IntegrityError) as error:
        # a value the services let through but a column can't hold (too long, out of range)
        detail = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "refused"
        return Rejected(rows, key, "database_error", detail)


def _detail(error: KopilkaError, rename: Callable[[str], str] = str) -> str:
    """The error's detail; every problem of an invalid input, not only the first."""
    if not isinstance(error, InvalidInput) or not error.problems:
        return error.detail
    return "; ".join(str(Problem(rename(problem.loc), problem.message))
                     for problem in error.problems)  # fmt: skip


def _refuse_extra_cells(row: CsvRow) -> None:
    if row.extra:
        raise InvalidInput([Problem(f"line {row.line}", _extra_cells(row))])


def _extra_cells(row: CsvRow) -> str:
    return f"has {row.extra} more cells than the header has columns"


def _require_program(engine: Engine, program_code: str) -> None:
    with engine.connect() as connection:
        try:
            load_program(connection, program_code)
        except NotFound as error:
            raise CannotImport(error.detail) from None


def write_rejects(handle: TextIO, report: ImportReport) -> None:
    """The rejected rows as they were, with a `reason` column: fix them, import the file again."""
    columns = [column for column in report.columns if column != REASON_COLUMN]
    writer = csv.writer(handle)
    writer.writerow([*columns, REASON_COLUMN])
    for rejected in sorted(report.rejected, key=lambda item: item.lines):
        for row in rejected.rows:
            writer.writerow([*(row.cells.get(column, "") for column in columns), rejected.reason])
