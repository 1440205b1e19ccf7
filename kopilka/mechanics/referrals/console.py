"""Referral decisions made in the operator console: the service
(`kopilka.mechanics.referrals.handlers.decide`) does the work and the operator's audit
row is its `after` hook, so a decision and the record of who made it are committed
together, or not at all (beside the referral's own `referral_decisions` row).

    referral.approve   target referral:{id}   details: status, note
    referral.reject    target referral:{id}   details: status, note
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.mechanics.referrals import handlers as referrals
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator


def decide(
    engine: Engine,
    operator: Operator,
    referral: str,
    action: str,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    """`approve` or `reject` the operator's program's referral, audited."""
    after = operators.audited(
        operator,
        f"referral.{action}",
        _target,
        lambda answer: {"status": answer["status"], "note": note or ""},
        now,
    )
    body = {"note": note} if note else None
    answer, _changed = referrals.decide(
        engine, operator.program, referral, action, body, actor=operator.actor, now=now, after=after
    )
    return answer


def _target(_: Connection, answer: dict[str, Any]) -> str:
    return f"referral:{answer['id']}"
