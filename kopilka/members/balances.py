"""A member's balance, history and manual adjustments."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    or_,
    select,
)

from kopilka.kernel.errors import IdempotencyConflict, InsufficientPoints, InvalidInput, Problem
from kopilka.kernel.ledger import AccountCode
from kopilka.kernel.ledger import balance as balance_of
from kopilka.kernel.money import format_minor, is_within_limits, parse_decimal, to_minor
from kopilka.kernel.reading import text_problem
from kopilka.ledger.accounts import POINTS, member_balances
from kopilka.ledger.wallet import Wallet
from kopilka.members import standing
from kopilka.members.handlers import find_member, member_id_by, member_key
from kopilka.platform.db import is_postgresql, reading
from kopilka.platform.idempotency import AfterWrite, followed, idempotent
from kopilka.platform.statements import COMMIT, driver_form, driver_rows_pipelined
from kopilka.platform.tables import (
    accounts,
    member_expiring,
    member_totals,
    program_versions,
    programs,
    purchases,
    transfers,
)
from kopilka.programs.handlers import CURRENT_VERSION_COLUMNS, LoadedProgram, compiled, load_program

HISTORY_PAGE = 50


def balance(engine: Engine, program_code: str, member_ref: str) -> dict[str, Any]:
    with reading(engine) as connection:
        read = (
            _read_at_once(connection, program_code, member_ref) if is_postgresql(engine) else None
        )
        if read is None:  # SQLite (no round trips to save), or a program or member missing
            read = _read_in_turn(connection, program_code, member_ref)
    program, balances, lifetime, expiring_rows = read
    digits = program.calculator.program.points.precision
    expiring = [
        {"date": day.isoformat(), "points": format_minor(points, digits)}
        for day, points in expiring_rows
    ]
    return {
        "available": format_minor(balances[AccountCode.AVAILABLE], digits),
        "pending": format_minor(balances[AccountCode.PENDING], digits),
        "held": format_minor(balances[AccountCode.HELD], digits),
        "lifetime_accrued": format_minor(lifetime["points_accrued"], digits),
        "lifetime_redeemed": format_minor(lifetime["points_redeemed"], digits),
        "expiring": expiring,
    }


# what a balance reads: the program, the member's points balances, their lifetime totals
# (kept, not summed) and their points by the day they expire (kept per day: no lot read)
BalanceRead = tuple[LoadedProgram, dict[AccountCode, int], dict[str, int], list[Any]]


def _read_in_turn(connection: Connection, program_code: str, member_ref: str) -> BalanceRead:
    program = load_program(connection, program_code)
    member = find_member(connection, program.program_id, member_ref)
    balances = member_balances(connection, program.program_id, member.id)
    expiring_rows = connection.execute(_expiring(member_expiring.c.member_id == member.id)).all()
    return (program, {code: value for code, (_, value) in balances.items()},
            standing.lifetime(connection, member.id), list(expiring_rows))  # fmt: skip


def _read_at_once(connection: Connection, program_code: str, member_ref: str) -> BalanceRead | None:
    """The same reads in one round trip on PostgreSQL — BEGIN, the four queries, COMMIT in
    one pipeline, the member found in each by their reference — or None when the program
    or the member is missing (the reads in turn say which)."""
    key = member_key(member_ref)
    if key is None:
        return None
    values = {"program_code": program_code, "member_key": key[1]}
    statements = [(sql, {**constants, **values}) for sql, constants in _at_once(key[0])]
    version, points, totals, expiring_rows, _ = driver_rows_pipelined(
        connection, [*statements, (COMMIT, {})]
    )
    if not version or not points:
        return None
    codes = [AccountCode(row.code) for row in points]
    balances = {code: balance_of(code, row.debits_posted, row.credits_posted)
                for code, row in zip(codes, points, strict=True)}  # fmt: skip
    lifetime = dict(zip(standing.TOTALS.counts, totals[0] if totals else
                        (0,) * len(standing.TOTALS.counts), strict=True))  # fmt: skip
    return compiled(connection, version[0]), balances, lifetime, list(expiring_rows)


@cache
def _at_once(column: ColumnElement[Any]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """psycopg's text of the four reads (with their own constants), for a member found by
    `column` — compiled once per column."""
    member = member_id_by(column)
    queries = (
        select(*CURRENT_VERSION_COLUMNS)
        .join(program_versions, program_versions.c.program_id == programs.c.id)
        .where(programs.c.code == bindparam("program_code"),
               program_versions.c.version == programs.c.current_version),
        select(accounts.c.code, accounts.c.debits_posted, accounts.c.credits_posted)
        .where(accounts.c.member_id == member,
               accounts.c.code.in_([code.value for code in POINTS.accounts])),
        select(*(member_totals.c[name] for name in standing.TOTALS.counts))
        .where(member_totals.c.member_id == member),
        _expiring(member_expiring.c.member_id == member),
    )  # fmt: skip
    return tuple(driver_form(query, unset=True) for query in queries)


def _expiring(whose: ColumnElement[bool]) -> Select[Any]:
    return (
        select(member_expiring.c.day, member_expiring.c.points)
        .where(whose, member_expiring.c.points > 0)
        .order_by(member_expiring.c.day)
    )


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
