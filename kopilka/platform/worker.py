"""The work that falls due with time, run by `kopilka worker` for a given moment.

Each job is idempotent for its moment: running the worker twice for the same `now`
changes nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.checkout.purchases import release_due_holds
from kopilka.ledger.pending import activate_due_points
from kopilka.mechanics.cashback.handlers import activate_due_cashback
from kopilka.mechanics.expiry.handlers import expire_due_points, warn_of_expiry
from kopilka.mechanics.tiers.handlers import review_tiers
from kopilka.mechanics.triggers.handlers import fire_triggers


def run_due_work(engine: Engine, *, now: datetime) -> dict[str, int]:
    """Do everything due by `now`; how many of each thing were done. Pending points
    become available before expiry runs, so a lot that is both is burnt the same run."""
    return {
        "holds_released": release_due_holds(engine, now=now),
        "lots_activated": activate_due_points(engine, now=now),
        "cashback_activated": activate_due_cashback(engine, now=now),
        "lots_expired": expire_due_points(engine, now=now),
        "expiry_warnings": warn_of_expiry(engine, now=now),
        "triggers_fired": fire_triggers(engine, now=now),
        "tiers_changed": review_tiers(engine, now=now),
    }
