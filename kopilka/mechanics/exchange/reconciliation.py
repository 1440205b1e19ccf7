"""The daily reconciliation: for one of the program's local days, every exchange whose two
sides disagree, by transaction id.

As the source (its sagas asked that day):
- `held_not_settled`: the member's points are held and the saga is neither confirmed nor
  reversed (the worker has not resolved it: the target is unreachable, or its time-out
  has not passed);
- `confirmed_not_credited`: confirmed here, but the target (a program of this Kopilka)
  holds no credit for it;
- `reversed_but_credited`: reversed here, but the target credited it;
- `amounts_differ`: the target credited another amount than the saga asked (for an
  outside program, as it answered; for one of this Kopilka, as its row says).

As the target (credits received that day from programs of this Kopilka):
- `credit_without_saga`: a credit whose source holds no saga of that transaction id;
- `credited_not_confirmed`: credited here while the source's saga is still held or was
  reversed.

An outside program's own rows can't be read from here: its side is compared through what
it answered (the amount it credited), and its own reconciliation compares the rest.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from kopilka.mechanics.exchange.credits import local_source
from kopilka.mechanics.exchange.model import CreditState, State
from kopilka.mechanics.exchange.tables import exchange_credits, exchanges
from kopilka.platform.tables import programs
from kopilka.programs.handlers import load_program


def reconciliation(engine: Engine, program_code: str, day: date) -> dict[str, Any]:
    """The day's mismatches (`items`, sorted by transaction id; empty when both sides agree)."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        items = _as_source(connection, program.program_id, program_code, day)
        items += _as_target(connection, program.program_id, day)
    items.sort(key=lambda item: (item["transaction_id"], item["side"], item["issue"]))
    return {"date": day.isoformat(), "items": items}


def _mismatch(side: str, transaction_id: str, issue: str, detail: str) -> dict[str, Any]:
    return {"transaction_id": transaction_id, "side": side, "issue": issue, "detail": detail}


def _as_source(
    connection: Connection, program_id: int, program_code: str, day: date
) -> list[dict[str, Any]]:
    target = programs.alias("target")
    credit = exchange_credits.alias("credit")
    rows = connection.execute(
        select(exchanges, credit.c.state.label("credit_state"),
               credit.c.points.label("credit_points"))
        .select_from(
            exchanges
            .outerjoin(target, and_(exchanges.c.is_remote.is_(False),
                                    target.c.code == exchanges.c.to_program))
            .outerjoin(credit, and_(credit.c.program_id == target.c.id,
                                    credit.c.source == local_source(program_code),
                                    credit.c.transaction_id == exchanges.c.transaction_id))
        )
        .where(exchanges.c.program_id == program_id, exchanges.c.day == day)
    ).all()  # fmt: skip
    found: list[dict[str, Any]] = []
    for row in rows:
        found += _source_row(row)
    return found


def _source_row(row: Any) -> list[dict[str, Any]]:
    def mismatch(issue: str, detail: str) -> dict[str, Any]:
        return _mismatch("source", row.transaction_id, issue, detail)

    credited_there = row.credit_state == CreditState.CREDITED.value
    if row.state == State.HELD.value:
        return [mismatch("held_not_settled", f"{row.points} held since {row.created_at:%H:%M}, "
                                             f"time-out {row.deadline.isoformat()}")]  # fmt: skip
    found = []
    if row.state == State.CONFIRMED.value:
        if not row.is_remote and not credited_there:
            found.append(
                mismatch(
                    "confirmed_not_credited",
                    f"{row.to_program} says {row.credit_state or 'nothing'}",
                )
            )
        said = row.credit_points if not row.is_remote and credited_there else row.credited
        if said is not None and (said != row.credit or row.credited != row.credit):
            found.append(mismatch("amounts_differ", f"asked {row.credit}, confirmed "
                                                    f"{row.credited}, target {said}"))  # fmt: skip
    if row.state == State.REVERSED.value and credited_there:
        found.append(
            mismatch("reversed_but_credited", f"{row.to_program} credited {row.credit_points}")
        )
    return found


def _as_target(connection: Connection, program_id: int, day: date) -> list[dict[str, Any]]:
    source = programs.alias("source")
    rows = connection.execute(
        select(exchange_credits.c.transaction_id, exchange_credits.c.source,
               exchange_credits.c.points, exchanges.c.state.label("saga_state"),
               exchanges.c.credit.label("saga_credit"))
        .select_from(
            exchange_credits
            .outerjoin(source, exchange_credits.c.source == "program:" + source.c.code)
            .outerjoin(exchanges, and_(exchanges.c.program_id == source.c.id,
                                       exchanges.c.transaction_id
                                       == exchange_credits.c.transaction_id))
        )
        .where(exchange_credits.c.program_id == program_id, exchange_credits.c.day == day,
               exchange_credits.c.state == CreditState.CREDITED.value,
               exchange_credits.c.source.like("program:%"))
    ).all()  # fmt: skip
    found = []
    for row in rows:
        if row.saga_state is None:
            found.append(_mismatch("target", row.transaction_id, "credit_without_saga",
                                   f"{row.source} holds no saga of it"))  # fmt: skip
        elif row.saga_state != State.CONFIRMED.value:
            found.append(_mismatch("target", row.transaction_id, "credited_not_confirmed",
                                   f"{row.source}'s saga is {row.saga_state}"))  # fmt: skip
        elif row.saga_credit != row.points:
            found.append(_mismatch("target", row.transaction_id, "amounts_differ",
                                   f"credited {row.points}, the source asked "
                                   f"{row.saga_credit}"))  # fmt: skip
    return found
