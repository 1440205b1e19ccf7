"""Expiry: lots burn when their time is up, with warnings before (the worker's work).

A refund after a burn takes back only what did not burn: the ledger's expiry transfers
refer to the purchase that earned the lot, which the refund reads (`kopilka.checkout.refunds`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.expiry.handlers import expire_due_points, warn_of_expiry


class Expiry(Mechanic):
    name = "expiry"
    step = Step.LATER

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {
            "lots_expired": expire_due_points(engine, now=now),
            "expiry_warnings": warn_of_expiry(engine, now=now),
        }
