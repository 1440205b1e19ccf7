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
from kopilka.kernel.money import to_minor
from kopilka.mechanics.cashback.handlers import (
    accrue_cashback,
    activate_due_cashback,
    claw_back_cashback,
    preview_cashback,
)
from kopilka.mechanics.cashback.model import CashbackAward, compute_cashback


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

    def completed(self, sale: Sale) -> None:
        if sale.hold or sale.member_id is None:
            return
        awards = _awards(sale)
        if awards:  # a budget decides the amount only now, with the purchase written
            assert sale.purchase_id is not None
            sale.answer["cashback"] = accrue_cashback(
                sale.connection, sale.program.program_id, sale.program.calculator.program,
                sale.member_id, sale.purchase_id, awards, sale.now, sale.actor,
            )  # fmt: skip

    def confirmed(self, settlement: Settlement) -> None:
        if settlement.stored.get("cashback") is None:
            return
        settings = settlement.program.calculator.program
        awards = _awards_held(settlement.stored, settings.money_digits)
        given = accrue_cashback(
            settlement.connection, settlement.program.program_id, settings,
            settlement.member_id, settlement.purchase_id, awards, settlement.now,
            settlement.actor,
        ) if awards else None  # fmt: skip
        settlement.answer["cashback"] = given
        settlement.stored["cashback"] = given

    def cancelled(self, settlement: Settlement) -> None:
        if settlement.stored.get("cashback") is not None:  # never given now
            settlement.answer["cashback"] = None
            settlement.stored["cashback"] = None

    def refunded(self, refund: Refunding) -> None:
        given = refund.purchase.answer.get("cashback") or {}
        if given.get("status") not in ("pending", "available"):
            return
        settings = refund.program.calculator.program
        refund.answer["cashback_back"] = claw_back_cashback(
            refund.connection, refund.program.program_id, settings, refund.purchase.id,
            refunded=refund.money_back,
            paid=to_minor(Decimal(refund.purchase.answer["paid"]), settings.money_digits) or 0,
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
    return compute_cashback(settings.cashback, paid=sale.priced.quote.paid, location=location,
                            partner=partner, method=receipt.payment_method,
                            card_bin=receipt.payment_bin, at=receipt.at)  # fmt: skip


def _awards_held(answer: dict[str, Any], digits: int) -> list[CashbackAward]:
    """The awards a held purchase's answer recorded, to be given at its confirm."""
    held = answer.get("cashback") or {}
    base = to_minor(Decimal(answer["paid"]), digits) or 0  # cashback is on what was paid
    return [CashbackAward(item["campaign"], Decimal(item["percent"]), base,
                          to_minor(Decimal(item["amount"]), digits) or 0)
            for item in held.get("campaigns") or []]  # fmt: skip
