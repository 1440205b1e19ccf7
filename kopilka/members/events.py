"""Reading what happened to a member by itself: fired triggers, expiry warnings, expiries.

Events are written by the worker (kopilka.mechanics.expiry.handlers,
kopilka.mechanics.triggers.handlers); here they are read, newest first, a page at a
time, points as decimal strings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from kopilka.kernel.money import format_minor
from kopilka.members.handlers import find_member
from kopilka.platform.pages import newest_first
from kopilka.platform.tables import events
from kopilka.programs.handlers import load_program, read_program

EVENTS_PAGE = 50


def member_events(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = EVENTS_PAGE,
) -> dict[str, Any]:  # fmt: skip
    """The member's events, newest first; `next` is the `before` of the next page."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        digits = program.calculator.program.points.precision
        return newest_first(
            connection, select(events).where(events.c.member_id == member.id), events.c.id,
            before=before, limit=limit, item=lambda row: _event_json(row, digits),
        )  # fmt: skip


def _event_json(row: Any, digits: int) -> dict[str, Any]:
    data = dict(row.data)
    if "points_minor" in data:  # stored exact, in minor units; shown as the API shows points
        data["points"] = format_minor(int(data.pop("points_minor")), digits)
    return {
        "id": str(row.id),
        "kind": row.kind,
        "occasion": row.occasion,
        "at": row.occurred_at.isoformat(),
        **data,
    }


def program_triggers(engine: Engine, program_code: str) -> dict[str, Any]:
    """The triggers the program declares, as its file says them."""
    return {"items": read_program(engine, program_code)["document"].get("triggers") or []}
