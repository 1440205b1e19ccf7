"""Tiers in the purchase pipeline: a purchase that qualifies the member raises the tier.

Its step comes last (the purchase must count first); a held purchase counts at its
confirm. The periodic review (downgrades, the window moving on) is its due work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Sale, Settlement, Step
from kopilka.mechanics.tiers.handlers import review_tiers, upgrade_after_purchase


class Tiers(Mechanic):
    name = "tiers"
    step = Step.LATER

    def completed(self, sale: Sale) -> None:
        if sale.member is None or sale.hold:  # no query unless the program has tiers
            return
        upgrade_after_purchase(sale.connection, sale.program, sale.member.id, sale.now,
                               member=sale.member, purchase_id=sale.purchase_id,
                               actor=sale.actor)  # fmt: skip

    def confirmed(self, settlement: Settlement) -> None:
        upgrade_after_purchase(settlement.connection, settlement.program, settlement.member_id,
                               settlement.now, purchase_id=settlement.purchase_id,
                               actor=settlement.actor)  # fmt: skip

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {"tiers_changed": review_tiers(engine, now=now)}
