"""The bounce-back offers' hooks: a purchase that meets an offer asks the coupons
mechanic for a personal coupon (`Sale.coupons_wanted`), valid from the next day, and
records it (`bounce_backs`), both in the purchase's own write; a refund after which the
purchase no longer meets the offer has the coupon revoked, if unused (`gift_stands`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from kopilka.checkout.mechanic import CouponWanted, Mechanic, Refunding, Sale, Settlement, Step
from kopilka.kernel.program import Program
from kopilka.mechanics.bounce_back.model import Offer, OfferLine
from kopilka.mechanics.bounce_back.pages import router
from kopilka.mechanics.bounce_back.section import KEY
from kopilka.mechanics.bounce_back.tables import GIVEN_COLUMNS, bounce_backs
from kopilka.members.standing import local_day
from kopilka.platform.statements import ChildRows

HERE = Path(__file__).resolve().parent


def offers_of(program: Program) -> tuple[Offer, ...]:
    found = program.sections.get(KEY)
    return found if isinstance(found, tuple) else ()


class BounceBack(Mechanic):
    name = "bounce_back"
    step = Step.LATER
    pages = router
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    console_link = ("bounce-back", "Bounce-back coupons")

    def quoted(self, sale: Sale) -> None:
        earned = _earned(sale)
        if earned:
            sale.answer[self.name] = [_offer_json(sale, offer) for offer in earned]

    def planned(self, sale: Sale) -> None:
        if sale.member_id is None:
            return
        earned = _earned(sale)
        if not earned:
            return
        program = sale.program.calculator.program
        day = local_day(sale.now, program.timezone)
        for offer in earned:
            start, end = offer.window(day, program.timezone)
            reason = f"bounce-back {offer.code}"
            sale.coupons_wanted.append(CouponWanted(self.name, offer.coupon, reason, start, end))
        sale.rows.append(ChildRows(bounce_backs, "purchase_id", GIVEN_COLUMNS, [
            {"program_id": sale.program.program_id, "member_id": sale.member_id,
             "offer": offer.code, "campaign": offer.coupon, "created_at": sale.now}
            for offer in earned
        ]))  # fmt: skip
        sale.answer[self.name] = [_offer_json(sale, offer) for offer in earned]

    def gift_stands(self, refund: Refunding) -> bool:
        """The coupon stands while what is left of the purchase still meets every offer
        that gave one."""
        if refund.whole:
            return False
        program = refund.program.calculator.program
        offers = {offer.code: offer for offer in offers_of(program)}
        given = refund.connection.execute(
            select(bounce_backs.c.offer).where(bounce_backs.c.purchase_id == refund.purchase.id,
                                               bounce_backs.c.taken_back_at.is_(None))
        ).scalars()  # fmt: skip
        lines = [OfferLine(line.sku, program.category_lineage(line.category), line.amount)
                 for line in refund.left]  # fmt: skip
        day = local_day(refund.purchase.created_at, program.timezone)
        return all(
            code not in offers  # an offer no longer in the program: its gift stands
            or offers[code].earned(lines, day, refund.purchase.location or None)
            for code in given
        )

    def refunded(self, refund: Refunding) -> None:
        if self.gift_stands(refund):
            return
        taken = _take_back(refund.connection, refund.purchase.id, refund.now)
        if taken:
            refund.answer["bounce_back_taken_back"] = taken

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase cancelled: the coupons it earned go (the coupons mechanic
        revokes them, unused)."""
        taken = _take_back(settlement.connection, settlement.purchase_id, settlement.now)
        if taken:
            settlement.answer["bounce_back_taken_back"] = taken


def _take_back(connection: Connection, purchase_id: int, now: datetime) -> list[str]:
    """The purchase's bounce-backs marked taken back; their offers."""
    taken = connection.execute(
        update(bounce_backs)
        .where(bounce_backs.c.purchase_id == purchase_id, bounce_backs.c.taken_back_at.is_(None))
        .values(taken_back_at=now).returning(bounce_backs.c.offer)
    ).scalars().all()  # fmt: skip
    return sorted(taken)


def _earned(sale: Sale) -> list[Offer]:
    program = sale.program.calculator.program
    offers = offers_of(program)
    if not offers or sale.member is None:
        return []
    amounts = {line.n: line.amount for line in sale.priced.quote.lines}
    lines = [OfferLine(line.sku, program.category_lineage(line.category), amounts.get(line.n, 0))
             for line in sale.receipt.lines]  # fmt: skip
    day = local_day(sale.now, program.timezone)
    return [offer for offer in offers if offer.earned(lines, day, sale.receipt.location)]


def _offer_json(sale: Sale, offer: Offer) -> dict[str, Any]:
    program = sale.program.calculator.program
    start, end = offer.window(local_day(sale.now, program.timezone), program.timezone)
    until = f" until {_iso(end)}" if end else ""
    note = f"{offer.name}: a coupon for your next purchase, from {_iso(start)}{until}"
    return {"offer": offer.code, "name": offer.name, "campaign": offer.coupon,
            "valid_from": _iso(start), "valid_until": _iso(end), "message": note}  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
