"""Processing a purchase exactly once: the calculator's quote plus the ledger's writes.

One transaction: read the program version, the member and their balance (row-locked on
PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE), quote, write the purchase
and its transfers. The same `(location, receipt_id)` sent again answers the first result
with no second effect; the same id with another body is `idempotency_conflict`. A race
between two copies of one receipt ends in the unique key of `purchases`: the loser's
transaction is rolled back and retried, and then finds the winner's answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from kopilka.domain.errors import IdempotencyConflict, InvalidInput, Problem
from kopilka.domain.ledger import AccountCode, purchase_postings
from kopilka.domain.money import format_minor
from kopilka.domain.receipt import MemberContext, parse_receipt
from kopilka.services.members import find_member, member_refs
from kopilka.services.programs import LoadedProgram, canonical, load_program, to_json
from kopilka.store.ledger import member_balances, post
from kopilka.store.tables import purchases
from kopilka.wire import quote_json

T = TypeVar("T")
ATTEMPTS = 5  # a unique-key race or a serialization failure is retried, never shown


@dataclass(frozen=True)
class PurchaseResult:
    answer: dict[str, Any]
    created: bool  # False: a replay answered from the first result


def process_purchase(
    engine: Engine, program_code: str, body: object, *, now: datetime, actor: str
) -> PurchaseResult:
    request_hash = hashlib.sha256(canonical(to_json(body)).encode()).hexdigest()
    return retrying(
        engine,
        lambda connection: _process(connection, program_code, body, request_hash, now, actor),
    )


def retrying(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction; a unique-key race or serialization failure retries it."""
    for attempt in range(ATTEMPTS):
        try:
            with engine.begin() as connection:
                return work(connection)
        except (IntegrityError, DBAPIError) as error:
            if attempt == ATTEMPTS - 1 or not _is_retryable(error):
                raise
    raise AssertionError("unreachable")


def _is_retryable(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True  # a concurrent copy of this receipt won the unique key
    code = getattr(error.orig, "sqlstate", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock


def _process(
    connection: Connection,
    program_code: str,
    body: object,
    request_hash: str,
    now: datetime,
    actor: str,
) -> PurchaseResult:
    program = load_program(connection, program_code)
    calculator = program.calculator
    receipt = parse_receipt(body, calculator.program, now=now)
    if not receipt.receipt_id:
        raise InvalidInput([Problem("receipt_id", "is required to process a purchase")])
    replay = _replay(connection, program, receipt.location or "", receipt.receipt_id, request_hash)
    if replay is not None:
        return PurchaseResult(replay, created=False)
    member = find_member(connection, program.program_id, receipt.member) if receipt.member else None
    balances = (
        member_balances(connection, program.program_id, member.id, lock=True) if member else {}
    )
    available = balances[AccountCode.AVAILABLE][1] if member else None
    context = MemberContext(member_refs(member), balance=available) if member else None
    quote = calculator.quote(receipt, context)
    purchase_id = connection.execute(
        insert(purchases)
        .values(
            program_id=program.program_id,
            program_version_id=program.version_id,
            location=receipt.location or "",
            receipt_id=receipt.receipt_id,
            member_id=member.id if member else None,
            request_hash=request_hash,
            status="completed",
            answer={},
            lines=[{"n": line.n, "qty": str(line.qty)} for line in receipt.lines],
            created_at=now,
        )
        .returning(purchases.c.id)
    ).scalar_one()
    pending = calculator.program.accrual.pending_days > 0
    if member is not None:
        postings = purchase_postings(
            f"{program_code}:purchase:{purchase_id}",
            member.id,
            redeemed=quote.redeemed,
            accrued=quote.accrued,
            pending=pending,
        )
        post(
            connection, program.program_id, postings, actor=actor, now=now, purchase_id=purchase_id
        )
    answer = quote_json(
        quote,
        calculator.program,
        status="completed",
        purchase_id=str(purchase_id),
        member=str(member.id) if member else None,
        balance=available,
    )
    if balances:
        answer["balance"]["pending"] = format_minor(
            balances[AccountCode.PENDING][1] + (quote.accrued if pending else 0),
            calculator.program.points.precision,
        )
    answer["program_version"] = program.version
    connection.execute(update(purchases).where(purchases.c.id == purchase_id).values(answer=answer))
    return PurchaseResult(answer, created=True)


def _replay(
    connection: Connection,
    program: LoadedProgram,
    location: str,
    receipt_id: str,
    request_hash: str,
) -> dict[str, Any] | None:
    row = connection.execute(
        select(purchases.c.request_hash, purchases.c.answer).where(
            purchases.c.program_id == program.program_id,
            purchases.c.location == location,
            purchases.c.receipt_id == receipt_id,
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            f"receipt {receipt_id!r} at {location or 'no location'} was already processed "
            "with a different body"
        )
    answer: dict[str, Any] = row.answer
    return answer
