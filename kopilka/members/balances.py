"""A member's balance, history and manual adjustments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from kopilka.kernel.errors import IdempotencyConflict, InsufficientPoints, InvalidInput, Problem
from kopilka.kernel.ledger import AccountCode
from kopilka.kernel.money import format_minor, is_within_limits, parse_decimal, to_minor
from kopilka.kernel.reading import text_problem
from kopilka.ledger.accounts import member_balances
from kopilka.ledger.wallet import Wallet
from kopilka.members import standing
from kopilka.members.handlers import find_member
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite, followed, idempotent
from kopilka.platform.tables import accounts, member_expiring, purchases, transfers
from kopilka.programs.handlers import load_program

HISTORY_PAGE = 50


def balance(engine: Engine, program_code: str, member_ref: str) -> dict[str, Any]:
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        balances = member_balances(connection, program.program_id, member.id)
        lifetime = standing.lifetime(connection, member.id)  # kept, not summed
        expiring_rows = connection.execute(  # kept per day (`member_expiring`): no lot read
            select(member_expiring.c.day, member_expiring.c.points)
            .where(member_expiring.c.member_id == member.id, member_expiring.c.points > 0)
            .order_by(member_expiring.c.day)
        ).all()
    digits = program.calculator.program.points.precision
    expiring = [
        {"date": day.isoformat(), "points": format_minor(points, digits)}
        for day, points in expiring_rows
    ]
    return {
        "available": format_minor(balances[AccountCode.AVAILABLE][1], digits),
        "pending": format_minor(balances[AccountCode.PENDING][1], digits),
        "held": format_minor(balances[AccountCode.HELD][1], digits),
        "lifetime_accrued": format_minor(lifetime["points_accrued"], digits),
        "lifetime_redeemed": format_minor(lifetime["points_redeemed"], digits),
        "expiring": expiring,
    }


def history(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = HISTORY_PAGE,
) -> dict[str, Any]:  # fmt: skip
    """Every movement of the member's points with its reason, newest first, by cursor."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        owner = f"member:{member.id}"
        mine = select(accounts.c.id).where(
            accounts.c.program_id == program.program_id, accounts.c.owner == owner
        )
        query = (
            select(transfers, purchases.c.receipt_id, purchases.c.location)
            .outerjoin(purchases, purchases.c.id == transfers.c.purchase_id)
            .where(or_(transfers.c.debit_account_id.in_(mine),
                       transfers.c.credit_account_id.in_(mine)))
            .order_by(transfers.c.id.desc())
            .limit(limit + 1)
        )  # fmt: skip
        if before is not None:
            query = query.where(transfers.c.id < before)
        rows = connection.execute(query).all()
        codes = dict(connection.execute(select(accounts.c.id, accounts.c.code).where(
            accounts.c.id.in_(mine))).tuples().all())  # fmt: skip
    digits = program.calculator.program.points.precision
    items = [
        {
            "id": str(row.id),
            "at": row.created_at.isoformat(),
            "reason": row.reason,
            "points": format_minor(
                row.amount if row.credit_account_id in codes else -row.amount, digits
            ),
            "account": codes.get(row.credit_account_id) or codes.get(row.debit_account_id),
            "purchase_id": str(row.purchase_id) if row.purchase_id else None,
            "receipt_id": row.receipt_id,
            "actor": row.actor,
            "note": row.note,
        }
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return {"items": items, "next": items[-1]["id"] if more and items else None}


def adjust(
    engine: Engine, program_code: str, member_ref: str, data: object, *, actor: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """A manual correction with a mandatory reason; it can't take more than is available."""
    return make_adjustment(engine, program_code, member_ref, data, actor=actor, now=now)[0]


def make_adjustment(
    engine: Engine, program_code: str, member_ref: str, data: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """`adjust`, and whether it was made now (False: a replay of its id or key); `after`
    writes beside it in its transaction."""

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        program = load_program(connection, program_code)
        digits = program.calculator.program.points.precision
        points, reason, key = _adjustment(data, digits)
        member = find_member(connection, program.program_id, member_ref)
        wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                             member.id, now)  # fmt: skip
        available = wallet.balances[AccountCode.AVAILABLE]
        transfer_key = f"{program_code}:adjustment:{key}"
        earlier = connection.execute(
            select(transfers.c.amount, transfers.c.note).where(
                transfers.c.transfer_key == transfer_key
            )
        ).one_or_none()
        if earlier is not None:  # a replay: the same id answers the same adjustment
            if (earlier.amount, earlier.note) != (abs(points), reason):
                raise IdempotencyConflict(f"adjustment {key!r} was made with other figures")
            return _adjusted(points, reason, available, digits), False
        if available + points < 0:
            raise InsufficientPoints(
                f"an adjustment of {format_minor(points, digits)} is more than the "
                f"{format_minor(available, digits)} points available"
            )
        wallet.adjust(transfer_key, points)
        wallet.flush(actor=actor, note=reason)
        return _adjusted(points, reason, wallet.balances[AccountCode.AVAILABLE], digits), True

    request = {"member": member_ref, "body": data}
    return idempotent(engine, program_code, idempotency_key, "member.adjustment", request, now,
                      followed(attempt, after))  # fmt: skip


def _adjusted(points: int, reason: str, available: int, digits: int) -> dict[str, Any]:
    return {
        "points": format_minor(points, digits),
        "reason": reason,
        "available": format_minor(available, digits),
    }


def _adjustment(data: object, digits: int) -> tuple[int, str, str]:
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise InvalidInput([Problem("", "must be a mapping with points and reason")])
    unknown = set(data) - {"points", "reason", "adjustment_id"}
    problems += [Problem(str(key), "unknown key") for key in sorted(unknown, key=str)]
    value = parse_decimal(data.get("points"))
    minor = to_minor(value, digits) if value is not None and is_within_limits(value) else None
    if minor is None or minor == 0:
        problems.append(Problem("points", f"must be a non-zero amount with at most {digits} "
                                          "decimals (negative takes points away)"))  # fmt: skip
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(Problem("reason", "is required: say why the points move"))
    problems += _text_problems(data, ("reason", "adjustment_id"))
    if problems:
        raise InvalidInput(problems)
    key = str(data.get("adjustment_id") or uuid.uuid4())
    assert minor is not None
    assert isinstance(reason, str)
    return minor, reason.strip(), key


def _text_problems(data: dict[Any, Any], keys: tuple[str, ...]) -> list[Problem]:
    """The text rule every field follows (`text_problem`): at most MAX_TEXT characters, no
    control characters; an id that isn't text is refused, not turned into some text."""
    problems = []
    for key in keys:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(Problem(key, "must be text"))
        elif isinstance(value, str) and (problem := text_problem(value)) is not None:
            problems.append(Problem(key, problem))
    return problems
