"""Tiers in the purchase pipeline: a purchase that qualifies the member raises the tier.

Its step comes last (the purchase must count first); a held purchase counts at its
confirm. The periodic review (downgrades, the window moving on) is its due work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, ScalarSelect

from kopilka.checkout.mechanic import JSON, Mechanic, Reads, Sale, Settlement, Step
from kopilka.mechanics.tiers.handlers import review_tiers, upgrade_after_purchase
from kopilka.mechanics.tiers.model import window_bounds
from kopilka.mechanics.tiers.store import standing_query
from kopilka.programs.handlers import LoadedProgram


class Tiers(Mechanic):
    name = "tiers"
    step = Step.LATER

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """The member's spend and purchases in the qualifying window before this purchase,
        read with the purchase's load: the purchase adds its own to decide an upgrade,
        with no read after its write."""
        rules = program.calculator.program
        settings = rules.tiers
        if settings is None:
            return None

        def window(now: datetime) -> JSON:
            start, end = window_bounds(settings.window, now, rules.timezone)
            return {"tiers_start": start, "tiers_end": end}

        def standing(rows: Any) -> JSON:
            spend, count = rows[0][0]
            return {"spend": int(spend), "purchases": int(count)}

        return Reads((standing_query(member),), standing, window)

    def completed(self, sale: Sale) -> None:
        if sale.member is None or sale.hold:  # no query unless the program has tiers
            return
        read = sale.priced.read.get(self.name)
        before = (read["spend"], read["purchases"]) if read else None
        spend = sum(line.amount for line in sale.priced.quote.lines)  # as the purchase's row
        upgrade_after_purchase(sale.connection, sale.program, sale.member.id, sale.now,
                               member=sale.member, purchase_id=sale.purchase_id,
                               actor=sale.actor, before=before, spend=spend)  # fmt: skip

    def confirmed(self, settlement: Settlement) -> None:
        upgrade_after_purchase(settlement.connection, settlement.program, settlement.member_id,
                               settlement.now, purchase_id=settlement.purchase_id,
                               actor=settlement.actor)  # fmt: skip

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {"tiers_changed": review_tiers(engine, now=now)}
