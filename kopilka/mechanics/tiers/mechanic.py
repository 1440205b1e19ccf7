"""Tiers in the purchase pipeline: a purchase that qualifies the member raises the tier.

Its step comes last (the purchase must count first); a held purchase counts at its
confirm. The periodic review (downgrades, the window moving on) is its due work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, ScalarSelect

from kopilka.checkout.mechanic import Mechanic, Reads, Sale, Settlement, Step
from kopilka.mechanics.tiers.handlers import (
    review_tiers,
    standing_reads,
    upgrade_after_purchase,
    upgrade_due,
)
from kopilka.programs.handlers import LoadedProgram


class Tiers(Mechanic):
    name = "tiers"
    step = Step.LATER

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        return standing_reads(program, member)

    def writes_after(self, sale: Sale) -> bool:
        if sale.member is None or sale.hold:
            return False
        counted = _counted(sale)
        if counted is None:  # a window not read with the load: looked at after the write
            return True
        return upgrade_due(sale.connection, sale.program, sale.member, sale.now, counted)

    def completed(self, sale: Sale) -> None:
        if sale.member is None or sale.hold:  # nothing unless the program has tiers
            return
        upgrade_after_purchase(sale.connection, sale.program, sale.member.id, sale.now,
                               member=sale.member, purchase_id=sale.purchase_id,
                               actor=sale.actor, counted=_counted(sale))  # fmt: skip

    def confirmed(self, settlement: Settlement) -> None:
        upgrade_after_purchase(settlement.connection, settlement.program, settlement.member_id,
                               settlement.now, purchase_id=settlement.purchase_id,
                               actor=settlement.actor)  # fmt: skip

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {"tiers_changed": review_tiers(engine, now=now)}


def _counted(sale: Sale) -> tuple[int, int] | None:
    """The member's (spend, purchases) in the window with this purchase: the window as
    the load read it, and the purchase itself (None: the load read no window)."""
    read = sale.priced.read.get(Tiers.name)
    if read is None:
        return None
    spend, purchases = read["window"]
    return spend + sum(line.amount for line in sale.priced.quote.lines), purchases + 1
