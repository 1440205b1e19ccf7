"""Pending points becoming available once the program's `accrual.pending_days` have passed.

The worker calls this for the moment it runs: every pending lot whose `available_at` has
come moves to the available balance (paying a debt first), member by member, one
transaction each. Running it twice for the same moment changes nothing the second time:
an activated lot is no longer pending.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from kopilka.ledger.wallet import Wallet
from kopilka.platform.idempotency import retrying
from kopilka.platform.tables import lots, programs
from kopilka.programs.handlers import load_program


def activate_due_points(engine: Engine, *, now: datetime, actor: str = "worker") -> int:
    """Make every pending lot due by `now` available; how many lots were activated."""
    due = (
        select(lots.c.program_id, lots.c.member_id)
        .where(lots.c.status == "pending", lots.c.available_at <= now)
        .distinct()
    )
    return member_by_member(engine, due, _activate, now=now, actor=actor)


def member_by_member(
    engine: Engine, due: Select[tuple[int, int]], work: Callable[..., int], **kw: Any
) -> int:
    """`work(connection, program_id=…, member_id=…, **kw)` for each (program, member) that
    `due` finds, in a retried transaction of its own (a member's lock is held briefly, and
    one member's failure does not undo the others'); the sum of what `work` counted."""
    with engine.connect() as connection:
        pairs = connection.execute(due).all()
    return sum(
        retrying(engine, partial(work, program_id=program_id, member_id=member_id, **kw))
        for program_id, member_id in pairs
    )


def _activate(
    connection: Connection, *, program_id: int, member_id: int, now: datetime, actor: str
) -> int:
    code = connection.execute(
        select(programs.c.code).where(programs.c.id == program_id)
    ).scalar_one()
    program = load_program(connection, code)
    wallet = Wallet.open(connection, program_id, program.calculator.program, member_id, now)
    due = connection.execute(  # read after the lock: a concurrent run may have done them
        select(lots.c.id, lots.c.remaining)
        .where(
            lots.c.member_id == member_id,
            lots.c.status == "pending",
            lots.c.available_at <= now,
        )
        .order_by(lots.c.available_at, lots.c.id)
    ).all()
    for lot_id, remaining in due:
        wallet.activate(f"{code}:activation:{lot_id}", lot_id, remaining)
    wallet.flush(actor=actor)
    return len(due)
