"""Claims' use cases (docs/claims.md): filing a claim for a receipt that earned nothing,
the partner's decision, the purchase a confirmed claim becomes, and reading them.

Exactly once. A receipt is claimed once (the claim's row is unique by program, location
and receipt id: a second filing answers the first claim). A confirm is three short
steps, each safe to repeat: (1) the decision — the claim's row locked, `open` →
`confirmed`, its event; (2) the purchase — `process_purchase` with the claim's receipt
verbatim, at the program version in force at the receipt's time, idempotent by the
receipt's location and id as every purchase is, so racing confirms (or a confirm and the
worker) make one purchase and the loser is answered with it; (3) the claim locked again,
`processed` with that purchase and its points, its event. A crash after (1) leaves a
claim `confirmed` and unprocessed: the next confirm, or the worker, runs (2) and (3).
A purchase refused at (2) (the member was blocked meanwhile, the till sent the receipt
with another body) puts the claim back `open`, with the refusal as its event, and the
decider gets the refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import Conflict, InvalidInput, KopilkaError, NotFound, Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import MAX_NOTE, Reader, row_id
from kopilka.kernel.receipt import Receipt, parse_receipt
from kopilka.mechanics.claims import status as records
from kopilka.mechanics.claims.model import (
    DECISIONS,
    Action,
    ClaimSettings,
    Status,
    due_at,
    is_overdue,
)
from kopilka.mechanics.claims.section import claims_of
from kopilka.members.handlers import find_member
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite, Answer, idempotent, retrying
from kopilka.programs.handlers import LoadedProgram, load_program, to_json

RECEIPT_KEYS = ("receipt_id", "location", "member", "at", "lines")  # the purchase's body
FILING_KEYS = (*RECEIPT_KEYS, "note")
DECISION_KEYS = ("reason",)
WORKER = "worker"


# — filing —


@dataclass(frozen=True)
class _Filing:
    receipt: Receipt  # as the version in force at its time reads it
    body: dict[str, Any]  # the purchase's body, verbatim (a till's resend of it is a replay)
    member_id: int
    version: int
    note: str | None


def file_claim(
    engine: Engine, program_code: str, body: object, *, actor: str, now: datetime,
    idempotency_key: str | None = None, after: AfterWrite | None = None,
    open_limit: int | None = None,
) -> Answer:  # fmt: skip
    """File a claim for a receipt that earned nothing: `{receipt_id, location, member,
    at, lines, note?}`. A receipt claimed before answers its claim (not made now); a
    receipt already processed (a purchase exists) is `409` naming that purchase.
    `open_limit`: a new claim is refused (`409`) while the member has this many open
    (a member filing for themselves)."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        filing = _filing(connection, program, body, now)
        receipt = filing.receipt
        assert receipt.location is not None
        assert receipt.receipt_id is not None
        where = (program.program_id, receipt.location, receipt.receipt_id)
        known = records.claim_of_receipt(connection, *where)
        if known is None:
            _refuse_processed(connection, where)
            _refuse_too_many(connection, filing.member_id, open_limit)
            known = records.insert_claim(connection, _row(program, filing, actor, now))
            if known is not None:  # ours (else a concurrent filing's, committed first)
                records.add_event(connection, program.program_id, known, Action.FILE, Status.OPEN,
                                note=filing.note, actor=actor, now=now)  # fmt: skip
                answer = _read(connection, program, known, now)
                if after is not None:
                    after(connection, answer)
                return answer, True
            known = records.claim_of_receipt(connection, *where)
            assert known is not None
        return _read(connection, program, known, now), False

    return idempotent(engine, program_code, idempotency_key, "claim.file", body, now, attempt)


def _refuse_processed(connection: Connection, where: tuple[int, str, str]) -> None:
    purchase = records.purchase_of_receipt(connection, *where)
    if purchase is not None:
        _, location, receipt_id = where
        raise Conflict(f"receipt {receipt_id!r} at {location} was already processed: purchase "
                       f"{purchase} — its points are there, there is nothing to claim")  # fmt: skip


def _refuse_too_many(connection: Connection, member_id: int, open_limit: int | None) -> None:
    if open_limit is None:
        return
    waiting = records.open_claims_of(connection, member_id)
    if waiting >= open_limit:
        raise Conflict(f"{waiting} claims are waiting for a decision already: at most "
                       f"{open_limit} at a time — wait for an answer, or call support")  # fmt: skip


def _filing(connection: Connection, program: LoadedProgram, body: object, now: datetime) -> _Filing:
    """The filing checked — every problem named at once: the receipt as a purchase's body
    (read by the version in force at its time), its time neither ahead nor too old, the
    member one of the program's."""
    problems: list[Problem] = []
    reader = Reader(body, "", problems, FILING_KEYS)
    for key in RECEIPT_KEYS:
        reader.raw(key, required=True)
    note = reader.text("note", max_length=MAX_NOTE, multiline=True)
    receipt_body = {key: reader.data[key] for key in RECEIPT_KEYS if key in reader.data}
    receipt = _receipt(receipt_body, program, now, problems)
    version = None
    if receipt is not None:
        version = _version(connection, program, receipt, now, problems)
    member_id = _member(connection, program, reader, problems)
    if problems:
        raise InvalidInput(problems)
    assert receipt is not None
    assert version is not None
    assert member_id is not None
    if version != program.version:  # its own version's catalogue and places decide
        receipt = _receipt(receipt_body, load_program(connection, _code(program), version),
                           now, problems)  # fmt: skip
        if receipt is None:
            at = f"at program version {version}, in force at the receipt's time"
            raise InvalidInput([Problem(p.loc, f"{p.message} ({at})") for p in problems])
    return _Filing(receipt, to_json(receipt_body), member_id, version, note)


def _code(program: LoadedProgram) -> str:
    return program.calculator.program.code


def _receipt(
    body: dict[str, Any], program: LoadedProgram, now: datetime, problems: list[Problem]
) -> Receipt | None:
    try:
        return parse_receipt(body, program.calculator.program, now=now)
    except InvalidInput as error:
        problems += [p for p in error.problems if p not in problems]
        return None


def _version(
    connection: Connection, program: LoadedProgram, receipt: Receipt, now: datetime,
    problems: list[Problem],
) -> int | None:  # fmt: skip
    """The version in force at the receipt's time, once that time is one to claim."""
    settings = claims_of(program.calculator.program)
    if receipt.at > now:
        problems.append(Problem("at", f"{receipt.at.isoformat()} is in the future"))
        return None
    if receipt.at < now - timedelta(days=settings.within_days):
        problems.append(Problem("at", f"{receipt.at.isoformat()} is more than "
                                f"{settings.within_days} days ago: too old to claim"))  # fmt: skip
        return None
    version = records.version_at(connection, program.program_id, receipt.at)
    if version is None:
        problems.append(Problem("at", f"{receipt.at.isoformat()} is before the program began"))
    return version


def _member(
    connection: Connection, program: LoadedProgram, reader: Reader, problems: list[Problem]
) -> int | None:
    ref = reader.data.get("member")
    if not isinstance(ref, str):
        return None  # reported by the receipt's parse
    try:
        row = find_member(connection, program.program_id, ref)
    except NotFound as error:
        problems.append(Problem("member", error.detail))
        return None
    if row.status != "active":
        raise Conflict(f"member {ref!r} is {row.status}: a claim can't earn them points")
    return int(row.id)


def _row(program: LoadedProgram, filing: _Filing, actor: str, now: datetime) -> dict[str, Any]:
    receipt = filing.receipt
    settings: ClaimSettings = claims_of(program.calculator.program)
    return {
        "program_id": program.program_id, "location": receipt.location,
        "receipt_id": receipt.receipt_id, "member_id": filing.member_id, "at": receipt.at,
        "receipt": filing.body, "total": receipt.total, "program_version": filing.version,
        "note": filing.note, "status": Status.OPEN.value, "filed_by": actor, "created_at": now,
        "due_at": due_at(now, settings),
    }  # fmt: skip


# — decisions —


def decide(
    engine: Engine, program_code: str, claim_ref: str, action: str, body: object, *,
    actor: str, now: datetime, partner: str | None = None, after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """`confirm` an open claim (it is processed as its purchase, once) or `reject` it
    (`{reason}` required). The same decision again answers the claim as it stands; the
    other one after a decision is `409`. `partner`: the decider acts for that partner
    only — another partner's claim is `404`. `after` writes beside the decision."""
    assert action in DECISIONS
    reason = _reason(body, required=action == Action.REJECT.value)
    claim_id = _claim_id(claim_ref)
    if action == Action.REJECT.value:
        return retrying(engine, lambda c: _reject(c, program_code, claim_id, partner, reason,
                                                  actor, now, after))  # fmt: skip
    made = retrying(engine, lambda c: _confirm(c, program_code, claim_id, partner, reason,
                                               actor, now, after))  # fmt: skip
    answer = _process(engine, program_code, claim_id, actor=actor, now=now)
    return answer, made


def _reason(body: object, *, required: bool) -> str | None:
    problems: list[Problem] = []
    data = {} if body is None else body  # no body: no reason given
    reason = Reader(data, "", problems, DECISION_KEYS).text(
        "reason", required=required, max_length=MAX_NOTE, multiline=True
    )
    if problems:
        raise InvalidInput(problems)
    return reason


def _claim_id(claim_ref: str) -> int:
    claim_id = row_id(claim_ref)
    if claim_id is None:
        raise NotFound(f"claim {claim_ref!r} does not exist")
    return claim_id


def _locked(
    connection: Connection, program_code: str, claim_id: int, partner: str | None
) -> tuple[LoadedProgram, Any]:
    program = load_program(connection, program_code)
    row = records.lock_claim(connection, program.program_id, claim_id)
    return program, _visible(program, row, claim_id, partner)


def _visible(program: LoadedProgram, row: Any, claim_id: int, partner: str | None) -> Any:
    """The claim, or `NotFound` — also for another partner's claim, to that partner."""
    places = partner_locations(program, partner)
    if row is None or (places is not None and row.location not in places):
        raise NotFound(f"claim {claim_id} does not exist")
    return row


def partner_locations(program: LoadedProgram, partner: str | None) -> frozenset[str] | None:
    """The locations a partner's key or operator sees (None: the whole program's)."""
    if partner is None:
        return None
    found = (p.locations for p in program.calculator.program.partners if p.code == partner)
    return frozenset(next(found, ()))


def _reject(
    connection: Connection, program_code: str, claim_id: int, partner: str | None,
    reason: str | None, actor: str, now: datetime, after: AfterWrite | None,
) -> Answer:  # fmt: skip
    program, row = _locked(connection, program_code, claim_id, partner)
    if row.status == Status.REJECTED.value:
        return _read(connection, program, claim_id, now), False
    if row.status != Status.OPEN.value:
        purchase = row.purchase_id or "on its way"
        raise Conflict(f"claim {claim_id} was confirmed (purchase {purchase}): a decision is "
                       "final — refund the purchase to undo it")  # fmt: skip
    records.set_claim(connection, claim_id, status=Status.REJECTED.value, decided_by=actor,
                    decided_at=now, reason=reason)  # fmt: skip
    records.add_event(connection, program.program_id, claim_id, Action.REJECT, Status.REJECTED,
                    note=reason, actor=actor, now=now)  # fmt: skip
    answer = _read(connection, program, claim_id, now)
    if after is not None:
        after(connection, answer)
    return answer, True


def _confirm(
    connection: Connection, program_code: str, claim_id: int, partner: str | None,
    reason: str | None, actor: str, now: datetime, after: AfterWrite | None,
) -> bool:  # fmt: skip
    """Step (1): the decision; whether it was made now (False: confirmed before)."""
    program, row = _locked(connection, program_code, claim_id, partner)
    if row.status == Status.REJECTED.value:
        raise Conflict(f"claim {claim_id} was rejected: a decision is final")
    if row.status != Status.OPEN.value:
        return False
    _refuse_processed(connection, (program.program_id, row.location, row.receipt_id))
    records.set_claim(connection, claim_id, status=Status.CONFIRMED.value, decided_by=actor,
                    decided_at=now, reason=reason)  # fmt: skip
    records.add_event(connection, program.program_id, claim_id, Action.CONFIRM, Status.CONFIRMED,
                    note=reason, actor=actor, now=now)  # fmt: skip
    if after is not None:
        after(connection, _read(connection, program, claim_id, now))
    return True


def _process(
    engine: Engine, program_code: str, claim_id: int, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Steps (2) and (3): a confirmed claim's purchase, and the claim processed with it."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        row = records.claim_row(connection, program.program_id, claim_id)
    assert row is not None
    if row.status != Status.CONFIRMED.value:  # processed by a racing confirm, or the worker
        return read_claim(engine, program_code, str(claim_id), now=now)
    try:
        result = process_purchase(engine, program_code, row.receipt, now=now,
                                  actor=f"claim:{claim_id}",
                                  version=row.program_version)  # fmt: skip
    except KopilkaError as error:
        retrying(engine, partial(_reopen, program_code=program_code, claim_id=claim_id,
                                 refusal=_refusal(error), actor=actor, now=now))  # fmt: skip
        raise
    purchase_id = int(result.answer["purchase_id"])
    return retrying(engine, partial(_processed, program_code=program_code, claim_id=claim_id,
                                    purchase_id=purchase_id, actor=actor, now=now))  # fmt: skip


def _processed(
    connection: Connection, *, program_code: str, claim_id: int, purchase_id: int, actor: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    program, row = _locked(connection, program_code, claim_id, None)
    if row.status == Status.CONFIRMED.value:
        points = records.accrued_of(connection, purchase_id)
        records.set_claim(connection, claim_id, status=Status.PROCESSED.value,
                        purchase_id=purchase_id, points=points, processed_at=now)  # fmt: skip
        records.add_event(connection, program.program_id, claim_id, Action.PROCESS,
                        Status.PROCESSED, note=f"purchase {purchase_id}", actor=actor,
                        now=now)  # fmt: skip
    return _read(connection, program, claim_id, now)


def _reopen(
    connection: Connection, *, program_code: str, claim_id: int, refusal: str, actor: str,
    now: datetime,
) -> None:  # fmt: skip
    """The purchase was refused: the claim is open again, the refusal its event."""
    program, row = _locked(connection, program_code, claim_id, None)
    if row.status != Status.CONFIRMED.value:
        return
    records.set_claim(connection, claim_id, status=Status.OPEN.value, decided_by=None,
                    decided_at=None, reason=None)  # fmt: skip
    records.add_event(connection, program.program_id, claim_id, Action.UNPROCESSED, Status.OPEN,
                    note=refusal[:MAX_NOTE], actor=actor, now=now)  # fmt: skip


def _refusal(error: KopilkaError) -> str:
    problems = getattr(error, "problems", ())
    return "; ".join(str(p) for p in problems) or error.detail


def process_confirmed(engine: Engine, *, now: datetime) -> dict[str, int]:
    """The worker: every claim confirmed and left without its purchase is processed."""
    with reading(engine) as connection:
        due = records.confirmed_unprocessed(connection)
        codes = dict(records.program_codes(connection, {row.program_id for row in due}))
    processed = 0
    for row in due:
        try:
            _process(engine, codes[row.program_id], row.id, actor=WORKER, now=now)
        except KopilkaError:
            continue  # reopened, with the refusal as its event
        processed += 1
    return {"claims_processed": processed} if processed else {}


# — reading —


def claim_json(row: Any, program: LoadedProgram, now: datetime) -> dict[str, Any]:
    settings = program.calculator.program

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row.id),
        "status": row.status,
        "receipt_id": row.receipt_id,
        "location": row.location,
        "member": {"id": str(row.member_id), "card": row.member_card},
        "at": moment(row.at),
        "lines": row.receipt.get("lines", []),
        "total": format_minor(int(row.total), settings.money_digits),
        "note": row.note,
        "program_version": row.program_version,
        "filed_by": row.filed_by,
        "filed_at": moment(row.created_at),
        "due_at": moment(row.due_at),
        "overdue": is_overdue(row.status, row.due_at, now),
        "decided_by": row.decided_by,
        "decided_at": moment(row.decided_at),
        "reason": row.reason,
        "purchase_id": str(row.purchase_id) if row.purchase_id is not None else None,
        "points": format_minor(int(row.points), settings.points.precision)
        if row.points is not None
        else None,
        "processed_at": moment(row.processed_at),
    }


def _read(
    connection: Connection, program: LoadedProgram, claim_id: int, now: datetime
) -> dict[str, Any]:
    row = records.claim_row(connection, program.program_id, claim_id)
    if row is None:
        raise NotFound(f"claim {claim_id} does not exist")
    document = claim_json(row, program, now)
    document["events"] = [
        {"action": e.action, "status": e.status, "note": e.note, "actor": e.actor,
         "at": e.at.isoformat()}
        for e in records.events_of(connection, claim_id)
    ]  # fmt: skip
    return document


def _reading(
    engine: Engine, program_code: str, work: Callable[[Connection, LoadedProgram], Any]
) -> Any:
    with reading(engine) as connection:
        return work(connection, load_program(connection, program_code))


def read_claim(
    engine: Engine, program_code: str, claim_ref: str, *, now: datetime, partner: str | None = None
) -> dict[str, Any]:
    """One claim with every step of its life; another partner's is `404` to a partner."""
    claim_id = _claim_id(claim_ref)

    def work(connection: Connection, program: LoadedProgram) -> dict[str, Any]:
        row = records.claim_row(connection, program.program_id, claim_id)
        _visible(program, row, claim_id, partner)
        return _read(connection, program, claim_id, now)

    return _reading(engine, program_code, work)  # type: ignore[no-any-return]


def list_claims(
    engine: Engine, program_code: str, *, now: datetime, status: str | None = None,
    before: int | None = None, limit: int = 50, partner: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Claims newest first (of one `status` when given); `next` is the next page's `before`."""

    def work(connection: Connection, program: LoadedProgram) -> dict[str, Any]:
        places = partner_locations(program, partner)
        rows = records.claim_rows(connection, program.program_id, status=status, before=before,
                                limit=limit, locations=places)  # fmt: skip
        items = [claim_json(row, program, now) for row in rows]
        return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}

    return _reading(engine, program_code, work)  # type: ignore[no-any-return]


def claims_queue(
    engine: Engine, program_code: str, *, now: datetime, limit: int = 100,
    partner: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The open claims, the nearest deadline first: the console's queue."""

    def work(connection: Connection, program: LoadedProgram) -> list[dict[str, Any]]:
        rows = records.queue_rows(connection, program.program_id, limit=limit,
                                locations=partner_locations(program, partner))  # fmt: skip
        return [claim_json(row, program, now) for row in rows]

    return _reading(engine, program_code, work)  # type: ignore[no-any-return]


def claim_form_context(engine: Engine, program_code: str) -> dict[str, Any]:
    """What the member's claim form shows: the program's name and time zone, and its
    locations to choose from (code, name), by name."""
    with reading(engine, one_snapshot=False) as connection:
        settings = load_program(connection, program_code).calculator.program
    places = sorted(settings.locations.values(), key=lambda place: (place.name, place.code))
    return {"program_name": settings.name or settings.code, "timezone": settings.timezone,
            "locations": [(place.code, place.name) for place in places]}  # fmt: skip
