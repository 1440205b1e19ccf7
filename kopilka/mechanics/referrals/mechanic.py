"""The referrals mechanic's hooks (docs/referrals.md).

- `joined`: a member registers — their code and fingerprints, and the referral when
  they came by a code (or named a `referrer`);
- `planned`: a purchase that carries a payment card's BIN and last four digits or a
  device fingerprint adds them to the member's fingerprints in its own write (a
  running total, `Sale.bumps`): no round trip of its own, and nothing else on the hot
  path — the friend's first purchase is found later, by the worker;
- `due_work`: the worker judges the referrals whose first purchase has stood
  `waiting_days` (or was refunded) and pays the honest ones;
- `member_part`: the member's code, link and referrals, on the member's documents.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.checkout.mechanic import Joining, Mechanic, Sale, Step
from kopilka.mechanics.referrals import pages as console_pages
from kopilka.mechanics.referrals import routes as api_routes
from kopilka.mechanics.referrals.handlers import member_part, on_joined, settings_of, settle_due
from kopilka.mechanics.referrals.model import identities, payment_card
from kopilka.mechanics.referrals.status import fingerprint_bumps
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Referrals(Mechanic):
    name = "referrals"
    step = Step.LATER
    router = api_routes.router
    pages = console_pages.router
    console_link = ("referrals", "Referrals")
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"

    def planned(self, sale: Sale) -> None:
        member_id = sale.member_id
        if member_id is None or settings_of(sale.program) is None:
            return
        receipt = sale.receipt
        seen = identities(
            device=receipt.device, payment=payment_card(receipt.payment_bin, receipt.payment_last4)
        )
        sale.bumps += fingerprint_bumps(sale.program.program_id, member_id, seen)

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return settle_due(engine, now=now)

    def joined(self, joining: Joining) -> None:
        on_joined(joining)

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> dict[str, Any] | None:
        del now
        if settings_of(program) is None:
            return None
        return member_part(connection, program, member_id)
