"""The claims mechanic's hooks (docs/claims.md): nothing on the purchase path — a claim's
purchase is an ordinary purchase, made by `process_purchase` at the claim's confirm. The
mechanic brings its routes, its console queue, its tables and one piece of due work:

- `due_work`: claims confirmed but left without their purchase (a crash between the
  decision and the purchase) are processed — once, as at their confirm;
- `checks`: `kopilka verify` proves every processed claim is its receipt's purchase and
  keeps the points that purchase earned.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.claims import pages as console_pages
from kopilka.mechanics.claims import routes as api_routes
from kopilka.mechanics.claims.handlers import process_confirmed
from kopilka.mechanics.claims.tables import CHECKS

HERE = Path(__file__).resolve().parent


class Claims(Mechanic):
    name = "claims"
    step = Step.LATER
    router = api_routes.router
    pages = console_pages.router
    console_link = ("claims", "Claims")
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    checks = CHECKS

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return process_confirmed(engine, now=now)
