"""Club actions made in the operator console: the service
(`kopilka.mechanics.clubs.handlers`) does the work and the operator's audit row is its
`after` hook, so an action and the record of who made it are committed together, or not
at all (beside the membership's own `club_events` rows).

    club.invite   target club:{code}   details: code, uses, valid_until
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.mechanics.clubs import handlers as clubs
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator


def create_invite(
    engine: Engine, operator: Operator, club: str, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An invite code of the operator's program's club, audited."""
    after = operators.audited(
        operator, "club.invite", _target,
        lambda answer: {"code": answer["code"], "uses": answer["uses"],
                        "valid_until": body.get("valid_until") or ""},
        now,
    )  # fmt: skip
    answer, _created = clubs.create_invite(engine, operator.program, club, body,
                                           actor=operator.actor, now=now, after=after)  # fmt: skip
    return answer


def _target(_: Connection, answer: dict[str, Any]) -> str:
    return f"club:{answer['club']}"
