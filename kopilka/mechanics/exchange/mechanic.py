"""The exchange mechanic's hooks: points exchanged with other programs (docs/exchange.md).

It takes no part in a purchase: exchanges come by their own routes (`routes`), and the
mechanic brings those routes, its console page, its tables' migration branch, its
`verify` checks (each saga's state against its transfers) and its due work — sagas
left held past their time-out are confirmed or reversed, old nonces forgotten.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.exchange import pages, routes
from kopilka.mechanics.exchange.checks import CHECKS
from kopilka.mechanics.exchange.inbound import purge_nonces
from kopilka.mechanics.exchange.saga import settle_due

HERE = Path(__file__).resolve().parent


class Exchange(Mechanic):
    name = "exchange"
    step = Step.LATER
    router = routes.router
    pages = pages.router
    console_link = ("exchange", "Exchange of points")
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    checks = CHECKS

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        done = settle_due(engine, now=now)
        purged = purge_nonces(engine, now=now)
        return {**done, **({"exchange.nonces_purged": purged} if purged else {})}
