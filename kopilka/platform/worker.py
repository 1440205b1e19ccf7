"""The work that falls due with time, run by `kopilka worker` for a given moment.

Each job is idempotent for its moment: running the worker twice for the same `now`
changes nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.checkout.mechanic import mechanics
from kopilka.checkout.purchases import release_due_holds
from kopilka.ledger.pending import activate_due_points


def run_due_work(engine: Engine, *, now: datetime) -> dict[str, int]:
    """Do everything due by `now`; how many of each thing were done. Pending points
    become available before the mechanics' work (expiry among it), so a lot that is both
    is burnt the same run; then each mechanic's due work, in step order."""
    done = {
        "holds_released": release_due_holds(engine, now=now),
        "lots_activated": activate_due_points(engine, now=now),
    }
    for mechanic in mechanics():
        done.update(mechanic.due_work(engine, now))
    return done
