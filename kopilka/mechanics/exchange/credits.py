"""The target's side of an exchange: crediting one of our members the points another
program sent, telling its state, and giving up on one the source abandoned.

A transaction is one row of `exchange_credits`, unique per target program, source and
transaction id, so each call is idempotent: the same credit again answers the first
answer, another body under the same id is `idempotency_conflict`. A refusal (an unknown
member, a pair this program does not receive on) is recorded too, so its repeat and the
status say the same. Giving up on a transaction not credited records it `reversed`: a
credit asked later under that id is refused, so a source that reversed its hold never
sees the points appear here afterwards. Giving up on one already credited changes
nothing and says so: the credit stands and the source confirms.

The source is `program:<code>` for a program of this Kopilka, `partner:<id>` for an
outside one (its pair's `partner.id`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from kopilka.kernel.errors import IdempotencyConflict, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import MAX_TEXT, Reader
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.exchange.model import CreditState, Pair, Refusal, exchange_of
from kopilka.mechanics.exchange.seam import reached
from kopilka.mechanics.exchange.tables import exchange_credits
from kopilka.members.handlers import find_member
from kopilka.platform.idempotency import fingerprint, retrying
from kopilka.programs.handlers import LoadedProgram, load_program

CREDIT_KEYS = ("transaction_id", "member", "points", "from_member", "sent")
UNKNOWN = "unknown"  # the state of a transaction this program never heard of


@dataclass(frozen=True, slots=True)
class CreditRequest:
    transaction_id: str
    member: str
    points: int  # this program's minor units
    body_hash: str


def local_source(program_code: str) -> str:
    return f"program:{program_code}"


def partner_source(partner_id: str) -> str:
    return f"partner:{partner_id}"


def credit_key(program_code: str, source: str, transaction_id: str) -> str:
    """The ledger's idempotency id of a credit (the ids hashed, so the key fits)."""
    digest = hashlib.sha256(f"{source}\n{transaction_id}".encode("utf-8", "surrogatepass"))
    return f"{program_code}:exchange-in:{digest.hexdigest()[:40]}"


def read_credit(body: object, digits: int) -> CreditRequest:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, CREDIT_KEYS)
    transaction_id = reader.text("transaction_id", required=True, max_length=MAX_TEXT)
    member = reader.text("member", required=True, max_length=MAX_TEXT)
    points = reader.minor("points", digits, unit="points", required=True)
    reader.text("from_member", max_length=MAX_TEXT)  # the source's member, for the record
    reader.text("sent", max_length=64)  # what the source's member gave, for the record
    if points == 0:
        reader.report("points", "must be more than 0")
    if problems or transaction_id is None or member is None or points is None:
        raise InvalidInput(problems or [Problem("", "a credit needs transaction_id, member "
                                                    "and points")])  # fmt: skip
    return CreditRequest(transaction_id, member, points, fingerprint(body))


def receive_credit(
    engine: Engine, program_code: str, source: str, body: object, *, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Credit the points `source` sends one of our members, once per transaction id; the
    answer (`state`: credited or refused) and whether it was made now."""
    answer, is_new = retrying(engine, lambda connection: _credit(connection, program_code,
                                                                 source, body, now))  # fmt: skip
    if is_new and answer["state"] == CreditState.CREDITED.value:
        reached(program_code, "credited", answer["transaction_id"])
    return answer, is_new


def _credit(
    connection: Connection, program_code: str, source: str, body: object, now: datetime
) -> tuple[dict[str, Any], bool]:
    program = load_program(connection, program_code)
    settings = program.calculator.program
    request = read_credit(body, settings.points.precision)
    earlier = _earlier(connection, program.program_id, source, request.transaction_id)
    if earlier is not None:
        return _repeat(earlier, request, settings.points.precision), False
    pair = _receiving_pair(program, source)
    if pair is None:
        return _record(
            connection,
            program,
            source,
            request,
            now,
            refused=(
                Refusal.PAIR_CLOSED,
                f"program {program_code!r} receives no points from {source}",
            ),
        )
    try:
        member = find_member(connection, program.program_id, request.member)
    except NotFound:
        return _record(connection, program, source, request, now, pair=pair, refused=(
            Refusal.UNKNOWN_MEMBER, f"member {request.member!r} does not exist"))  # fmt: skip
    if member.status != "active":
        return _record(
            connection,
            program,
            source,
            request,
            now,
            pair=pair,
            refused=(Refusal.MEMBER_INACTIVE, f"member {request.member!r} is {member.status}"),
        )
    wallet = Wallet.open(connection, program.program_id, settings, member.id, now)
    answer = _record(connection, program, source, request, now, pair=pair, member_id=member.id)
    wallet.accrue(credit_key(program_code, source, request.transaction_id), request.points,
                  reason=Reason.EXCHANGE_CREDIT, source=AccountCode.EXCHANGE_CLEARING)  # fmt: skip
    wallet.flush(actor=source, note=f"exchange {request.transaction_id}"[:MAX_TEXT])
    reached(program_code, "credit", request.transaction_id)  # a crash here rolls it all back
    return answer


def _receiving_pair(program: LoadedProgram, source: str) -> Pair | None:
    settings = exchange_of(program.calculator.program)
    kind, _, name = source.partition(":")
    pair = settings.with_program(name) if kind == "program" else settings.with_partner(name)
    return pair if pair is not None and pair.receives else None


def _record(
    connection: Connection, program: LoadedProgram, source: str, request: CreditRequest,
    now: datetime, *, pair: Pair | None = None, member_id: int | None = None,
    refused: tuple[Refusal, str] | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    state = CreditState.REFUSED if refused else CreditState.CREDITED
    connection.execute(exchange_credits.insert().values(
        program_id=program.program_id, source=source, transaction_id=request.transaction_id,
        request_hash=request.body_hash, pair=pair.code if pair else None, member_id=member_id,
        to_member=request.member, points=0 if refused else request.points, state=state.value,
        ledger_key=None if refused else credit_key(program.calculator.program.code, source,
                                                   request.transaction_id),
        reason=f"{refused[0].value}: {refused[1]}"[:MAX_TEXT] if refused else None,
        day=_local_day(program, now), created_at=now,
    ))  # fmt: skip
    digits = program.calculator.program.points.precision
    row = _earlier(connection, program.program_id, source, request.transaction_id)
    return credit_answer(row, digits), True


def _earlier(connection: Connection, program_id: int, source: str, transaction_id: str) -> Any:
    return connection.execute(
        select(exchange_credits).where(
            exchange_credits.c.program_id == program_id, exchange_credits.c.source == source,
            exchange_credits.c.transaction_id == transaction_id)
    ).one_or_none()  # fmt: skip


def _repeat(earlier: Any, request: CreditRequest, digits: int) -> dict[str, Any]:
    if earlier.request_hash is not None and earlier.request_hash != request.body_hash:
        raise IdempotencyConflict(f"transaction_id {request.transaction_id!r} was sent with "
                                  "another body")  # fmt: skip
    return credit_answer(earlier, digits)


def credit_answer(row: Any, digits: int) -> dict[str, Any]:
    refusal = row.reason.split(":", 1)[0] if row.reason else None
    return {
        "transaction_id": row.transaction_id,
        "state": row.state,
        "points": format_minor(row.points, digits),
        "member": str(row.member_id) if row.member_id is not None else None,
        "refused_by": refusal if row.state == CreditState.REFUSED.value else None,
        "reason": row.reason,
    }


def credit_status(
    engine: Engine, program_code: str, source: str, transaction_id: str
) -> dict[str, Any]:
    """The transaction's state here: credited, refused, reversed — or `unknown`."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        row = _earlier(connection, program.program_id, source, transaction_id)
    if row is None:
        return {"transaction_id": transaction_id, "state": UNKNOWN, "points": None,
                "member": None, "refused_by": None, "reason": None}  # fmt: skip
    return credit_answer(row, program.calculator.program.points.precision)


def give_up_credit(
    engine: Engine, program_code: str, source: str, transaction_id: str, *, now: datetime
) -> dict[str, Any]:
    """The source reverses the transaction: if it was not credited here it never will be
    (recorded `reversed`); if it was, the credit stands and the answer says `credited`."""
    return retrying(engine, lambda connection: _give_up(connection, program_code, source,
                                                        transaction_id, now))  # fmt: skip


def _give_up(
    connection: Connection, program_code: str, source: str, transaction_id: str, now: datetime
) -> dict[str, Any]:
    program = load_program(connection, program_code)
    digits = program.calculator.program.points.precision
    earlier = _earlier(connection, program.program_id, source, transaction_id)
    if earlier is not None:
        return credit_answer(earlier, digits)
    if not transaction_id or len(transaction_id) > MAX_TEXT:
        raise InvalidInput([Problem("transaction_id", f"must be 1 to {MAX_TEXT} characters")])
    connection.execute(exchange_credits.insert().values(
        program_id=program.program_id, source=source, transaction_id=transaction_id,
        request_hash=None, points=0, state=CreditState.REVERSED.value,
        reason="reversed by the source before any credit", day=_local_day(program, now),
        created_at=now,
    ))  # fmt: skip
    row = _earlier(connection, program.program_id, source, transaction_id)
    return credit_answer(row, digits)


def _local_day(program: LoadedProgram, now: datetime) -> Any:
    return now.astimezone(ZoneInfo(program.calculator.program.timezone)).date()
