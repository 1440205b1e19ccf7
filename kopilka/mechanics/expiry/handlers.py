"""Points that burn: lots whose time has come, and warnings before they do.

A lot burns at its `expires_at` (set when it became available: `after_days` later, or
at the end of the period after — see `kopilka.kernel.lots.expires_at`). Whatever is
left of it (`remaining`: spending takes the soonest-burning lots first, so what is left
is what was not spent in time) moves from the member's available account to the
program's `expired` account, one transfer per lot, and the lot is left with nothing.

The work is set-based SQL in batches of members, one transaction per batch, never a
Python loop over lots: per batch a handful of statements, whatever the number of lots.
It takes the members' accounts first, in the order a purchase does (accounts, then
lots), so it never deadlocks with one; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets two
workers share the work without waiting on or repeating each other — a member busy in a
purchase is left for the next batch or run. Running it twice for the same moment burns
nothing the second time: a burnt lot has nothing left, and each transfer's key names its
lot and moment. Each member's expiry is also an `expiry` event, and points about to burn
an `expiry.warning` event (once per member and date), for messaging to pick up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.ledger.accounts import lock_members
from kopilka.platform.idempotency import retrying
from kopilka.platform.tables import accounts, events, lots, programs, transfers
from kopilka.programs.handlers import load_program

BATCH_MEMBERS = 2000  # members per transaction: tens of thousands of lots at most


def expire_due_points(
    engine: Engine, *, now: datetime, actor: str = "worker", batch: int = BATCH_MEMBERS
) -> int:
    """Burn every lot due by `now`; how many lots burned."""
    burned, after = 0, 0
    while True:  # batches of members in id order: each starts where the last one ended
        last, lot_count = retrying(
            engine, partial(_expire_batch, now=now, actor=actor, limit=batch, after=after)
        )
        burned += lot_count
        if last is None:
            return burned
        after = last


def _due(now: datetime) -> Any:
    """The condition of a lot that burns by `now`."""
    return and_(lots.c.status == "available", lots.c.remaining > 0, lots.c.expires_at <= now)


def _expire_batch(
    connection: Connection, *, now: datetime, actor: str, limit: int, after: int
) -> tuple[int | None, int]:
    """Burn the due lots of up to `limit` members after member `after`: the last member
    id looked at (None: no member is left) and how many lots burned."""
    chosen = _due_members(connection, now, limit, after)
    if not chosen:
        return None, 0
    member_ids = lock_members(connection, chosen)
    if not member_ids:  # all busy: another worker has them
        return chosen[-1], 0
    due = and_(_due(now), lots.c.member_id.in_(member_ids))
    per_member = connection.execute(
        select(lots.c.program_id, lots.c.member_id, func.sum(lots.c.remaining).label("points"),
               func.count().label("lots"))
        .where(due)
        .group_by(lots.c.program_id, lots.c.member_id)
    ).all()  # fmt: skip
    if not per_member:  # a concurrent run burned them between the choice and the lock
        return chosen[-1], 0
    _move_points(connection, due, now, actor)
    connection.execute(update(lots).where(due).values(remaining=0))
    connection.execute(
        insert(events),
        [
            {"program_id": row.program_id, "member_id": row.member_id, "kind": "expiry",
             "occasion": now.isoformat(), "data": {"points_minor": int(row.points),
                                                   "lots": int(row.lots)},
             "occurred_at": now}
            for row in per_member
        ],
    )  # fmt: skip
    return chosen[-1], sum(int(row.lots) for row in per_member)


def _due_members(connection: Connection, now: datetime, limit: int, after: int) -> list[int]:
    """The next `limit` members (by id, after `after`) with lots due."""
    query = (
        select(lots.c.member_id).where(_due(now), lots.c.member_id > after).distinct()
        .order_by(lots.c.member_id).limit(limit)
    )  # fmt: skip
    return [int(member_id) for member_id in connection.execute(query).scalars()]


def _move_points(connection: Connection, due: Any, now: datetime, actor: str) -> None:
    """One transfer per burning lot, and the members' running totals — set-based."""
    member_account = accounts.alias("member_account")
    expired_account = accounts.alias("expired_account")
    stamp = str(int(now.timestamp()))  # the moment in a transfer key: short, and unique
    connection.execute(
        insert(transfers).from_select(
            ["program_id", "transfer_key", "debit_account_id", "credit_account_id", "amount",
             "reason", "actor", "purchase_id", "created_at"],
            select(
                lots.c.program_id,
                programs.c.code + ":expiry:" + cast(lots.c.id, String) + "@" + stamp,
                member_account.c.id, expired_account.c.id, lots.c.remaining,
                literal(Reason.EXPIRY.value), literal(actor), lots.c.purchase_id,
                bindparam("now", now, type_=transfers.c.created_at.type),
            )
            .join(programs, programs.c.id == lots.c.program_id)
            .join(member_account, and_(member_account.c.member_id == lots.c.member_id,
                                       member_account.c.code == AccountCode.AVAILABLE.value))
            .join(expired_account, and_(expired_account.c.program_id == lots.c.program_id,
                                        expired_account.c.member_id.is_(None),
                                        expired_account.c.code == AccountCode.EXPIRED.value))
            .where(due),
        )
    )  # fmt: skip
    burned = (
        select(lots.c.member_id, func.sum(lots.c.remaining).label("points"))
        .where(due).group_by(lots.c.member_id).subquery()
    )  # fmt: skip
    connection.execute(  # UPDATE … FROM: one pass, not a sum per account
        update(accounts)
        .where(accounts.c.code == AccountCode.AVAILABLE.value,
               accounts.c.member_id == burned.c.member_id)
        .values(debits_posted=accounts.c.debits_posted + burned.c.points)
    )  # fmt: skip
    # the program's `expired` account keeps no running total (a hot account: every
    # member's expiry would queue on it); its balance is its transfers'


# — warnings —


def warn_of_expiry(engine: Engine, *, now: datetime) -> int:
    """An `expiry.warning` event per member and date for points burning within the
    program's `expiry.warn_days`; each recorded once. How many were recorded."""
    with engine.connect() as connection:
        codes = connection.execute(select(programs.c.code)).scalars().all()
    return sum(retrying(engine, partial(_warn, code=code, now=now)) for code in codes)


def _warn(connection: Connection, *, code: str, now: datetime) -> int:
    program = load_program(connection, code)
    expiry = program.calculator.program.expiry
    if expiry is None or not expiry.warn_days:
        return 0
    day = func.date(lots.c.expires_at)
    rows = connection.execute(
        select(lots.c.member_id, day.label("day"), func.sum(lots.c.remaining).label("points"))
        .where(lots.c.program_id == program.program_id, lots.c.status == "available",
               lots.c.remaining > 0, lots.c.expires_at > now,
               lots.c.expires_at <= now + timedelta(days=expiry.warn_days))
        .group_by(lots.c.member_id, day)
    ).all()  # fmt: skip
    if not rows:
        return 0
    new_events = [
        {"program_id": program.program_id, "member_id": row.member_id,
         "kind": "expiry.warning", "occasion": str(row.day),
         "data": {"points_minor": int(row.points), "date": str(row.day)}, "occurred_at": now}
        for row in rows
    ]  # fmt: skip
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(events).on_conflict_do_nothing(
        index_elements=["member_id", "kind", "occasion"]
    )
    return len(connection.execute(statement.returning(events.c.id), new_events).all())
