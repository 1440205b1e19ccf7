"""Cashback in the purchase pipeline: money back on what the member paid with money.

Its step comes after the points (cashback is on the money left to pay). A quote shows
what the campaigns would give; a purchase gives it (budgets decide the amount as it is
written); a held purchase gives it at its confirm; a refund takes back its share.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Refunding, Sale, Settlement, Step
from kopilka.checkout.records import MONEY, Award
from kopilka.kernel.money import to_minor
from kopilka.kernel.program import Program
from kopilka.ledger.accounts import CASHBACK
from kopilka.mechanics.cashback.handlers import (
    accrue_cashback,
    activate_due_cashback,
    claw_back_cashback,
    preview_cashback,
)
from kopilka.mechanics.cashback.model import CashbackAward, cashback_of, compute_cashback


class Cashback(Mechanic):
    name = "cashback"
    step = Step.CASHBACK

    def quoted(self, sale: Sale) -> None:
        if sale.member is not None:
            sale.answer["cashback"] = preview_cashback(sale.program.calculator.program,
                                                       _awards(sale), sale.now)  # fmt: skip

    def planned(self, sale: Sale) -> None:
        if sale.hold and sale.member is not None:  # given at confirm: stored as it will be
            preview = preview_cashback(sale.program.calculator.program, _awards(sale),
                                       sale.now)  # fmt: skip
            if preview is not None:
                sale.answer["cashback"] = {**preview, "status": "on_confirm"}
                sale.awards += _records(preview, ON_CONFIRM, sale.program.calculator.program)

    def writes_after(self, sale: Sale) -> bool:
        return not sale.hold and sale.member_id is not None and bool(_awards(sale))

    def completed(self, sale: Sale) -> None:
        if sale.hold or sale.member_id is None:
            return
        awards = _awards(sale)
        if awards:  # a budget decides the amount only now, with the purchase written
            assert sale.purchase_id is not None
            settings = sale.program.calculator.program
            given = accrue_cashback(
                sale.connection, sale.program.program_id, settings,
                sale.member_id, sale.purchase_id, awards, sale.now, sale.actor, fresh=True,
                purse=sale.wallet.purse.sibling(CASHBACK) if sale.wallet is not None else None,
            )  # fmt: skip
            sale.answer["cashback"] = given
            sale.awards += _records(given, GIVEN, settings)

    def confirmed(self, settlement: Settlement) -> None:
        planned = _awards_held(settlement)
        if not planned:
            return
        settings = settlement.program.calculator.program
        given = accrue_cashback(
            settlement.connection, settlement.program.program_id, settings,
            settlement.member_id, settlement.purchase_id, planned, settlement.now,
            settlement.actor,
        )  # fmt: skip
        settlement.answer["cashback"] = given
        settlement.stored["cashback"] = given
        settlement.added += _records(given, GIVEN, settings)

    def cancelled(self, settlement: Settlement) -> None:
        if settlement.stored.get("cashback") is not None:  # never given now
            settlement.answer["cashback"] = None
            settlement.stored["cashback"] = None

    def refunded(self, refund: Refunding) -> None:
        if not any(a.mechanic == self.name and a.kind == GIVEN for a in refund.awards):
            return
        refund.answer["cashback_back"] = claw_back_cashback(
            refund.connection, refund.program.program_id, refund.program.calculator.program,
            refund.purchase.id, refunded=refund.money_back, paid=int(refund.purchase.paid),
            key=f"{refund.refund_key}", now=refund.now, actor=refund.actor,
            refund_id=refund.refund_row,
        )  # fmt: skip

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {"cashback_activated": activate_due_cashback(engine, now=now)}


def _awards(sale: Sale) -> list[CashbackAward]:
    """The cashback a receipt earns: on what was paid with money."""
    settings = sale.program.calculator.program
    receipt = sale.receipt
    location = receipt.location
    partner = settings.locations[location].partner if location else None
    return compute_cashback(cashback_of(settings), paid=sale.priced.quote.paid, location=location,
                            partner=partner, method=receipt.payment_method,
                            card_bin=receipt.payment_bin, at=receipt.at)  # fmt: skip


GIVEN, ON_CONFIRM = "cashback", "cashback.on_confirm"  # the kinds of its records


def _records(given: dict[str, Any] | None, kind: str, program: Program) -> list[Award]:
    """The purchase's records of its cashback: one per campaign, as the answer lists them."""
    if given is None:
        return []
    digits = program.money_digits
    return [Award(Cashback.name, kind, to_minor(Decimal(item["amount"]), digits) or 0, MONEY,
                  source=item["campaign"], detail={"percent": item["percent"]})
            for item in given["campaigns"]]  # fmt: skip


def _awards_held(settlement: Settlement) -> list[CashbackAward]:
    """The awards a held purchase recorded, to be given at its confirm (on what it paid)."""
    return [CashbackAward(str(award.source), Decimal(award.detail["percent"]), settlement.paid,
                          award.amount)
            for award in settlement.awards
            if award.mechanic == Cashback.name and award.kind == ON_CONFIRM
            and award.detail]  # fmt: skip
