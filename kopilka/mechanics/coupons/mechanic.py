"""Coupons in the purchase pipeline: their points, their redemptions, their return.

Which coupons apply, and the discount each gives, is decided in the receipt's one
pricing (`offering`: the coupons' step after the program's discounts, in `pricing`); a
purchase with a coupon that does not apply is refused (`admit`); the coupons' points are
credited apart from the rules' (with their own reason), the coupons are taken when the
purchase is written, and given back when it is cancelled or wholly refunded.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

from kopilka.checkout.mechanic import Mechanic, Refunding, Sale, Settlement, Step
from kopilka.checkout.offers import OfferStep
from kopilka.checkout.pricing import Priced, PricingContext
from kopilka.checkout.records import Award, total
from kopilka.kernel.errors import CouponInvalid
from kopilka.kernel.ledger import Reason
from kopilka.kernel.money import format_minor, to_minor
from kopilka.mechanics.coupons.handlers import (
    PERSONAL_COLUMNS,
    give_back_coupons,
    given_by,
    personal_coupons,
    redeem_coupons,
    revoke_given,
)
from kopilka.mechanics.coupons.model import CouponCheck
from kopilka.mechanics.coupons.pages import router
from kopilka.mechanics.coupons.pricing import CouponsPriced, coupon_step, settle
from kopilka.mechanics.coupons.tables import coupons
from kopilka.platform.statements import ChildRows


class Coupons(Mechanic):
    name = "coupons"
    step = Step.COUPONS
    pages = router  # the campaigns' console pages
    templates = Path(__file__).parent / "templates"
    translations = Path(__file__).parent / "locale"  # its pages' texts, ru and en

    def offering(self, context: PricingContext) -> OfferStep | None:
        checks: list[CouponCheck] = []
        step = coupon_step(context, checks)
        if step is not None:
            context.parts[self.name] = checks  # filled in as the receipt is priced
        return step

    def admit(self, priced: Priced) -> None:
        """A purchase takes every coupon it names, or none: the first that does not apply."""
        for check in _coupons(priced).checks:
            if check.reason is not None:
                raise CouponInvalid(f"coupon {check.code!r} does not apply: {check.detail}",
                                    coupon=check.code, reason=check.reason)  # fmt: skip

    def quoted(self, sale: Sale) -> None:
        sale.answer["coupons"] = _coupons(sale.priced).answers
        points = _coupons(sale.priced).points
        balance = sale.answer.get("balance")
        if points and balance is not None:  # shown as the purchase will credit them
            settings = sale.program.calculator.program
            where = "pending" if settings.accrual.pending_days > 0 else "available"
            digits = settings.points.precision
            shown = to_minor(Decimal(balance[where]), digits) or 0
            balance[where] = format_minor(shown + points, digits)

    def planned(self, sale: Sale) -> None:
        priced = _coupons(sale.priced)
        sale.answer["coupons"] = priced.answers
        sale.awards += [Award(self.name, "points", given, source=check.code)
                        for check, _, given in priced.applied if given]  # fmt: skip
        points = priced.points
        if sale.wallet is not None and points and not sale.hold:  # a hold's come at confirm
            wallet = sale.wallet
            key = f"{wallet.program.code}:purchase:{{purchase}}:coupon"
            wallet.accrue(key, points, reason=Reason.COUPON,
                          pending=wallet.program.accrual.pending_days > 0)  # fmt: skip

    def issue(self, sale: Sale) -> None:
        """The personal coupons the other mechanics give with this purchase (a stamp
        card's reward, a bounce-back): written with the purchase, named in its answer."""
        if not sale.coupons_wanted or sale.member_id is None:
            return
        rows, answers = personal_coupons(sale.connection, sale.program, sale.member_id,
                                         sale.coupons_wanted, sale.now)  # fmt: skip
        if rows:
            sale.rows.append(ChildRows(coupons, "source_purchase_id", PERSONAL_COLUMNS, rows))
        sale.answer["coupons_given"] = answers

    def writes_after(self, sale: Sale) -> bool:
        return bool(_coupons(sale.priced).applied)

    def completed(self, sale: Sale) -> None:
        assert sale.purchase_id is not None
        redeem_coupons(sale.connection, sale.program.program_id, sale.purchase_id,
                       sale.member_id, _coupons(sale.priced).applied, sale.now)  # fmt: skip

    def confirmed(self, settlement: Settlement) -> None:
        settings = settlement.program.calculator.program
        points = total(settlement.awards, self.name, "points")
        if points:
            key = f"{settings.code}:hold:{settlement.purchase_id}:coupon"
            settlement.wallet.accrue(key, points, reason=Reason.COUPON,
                                     purchase_id=settlement.purchase_id,
                                     pending=settings.accrual.pending_days > 0)  # fmt: skip

    def cancelled(self, settlement: Settlement) -> None:
        give_back_coupons(settlement.connection, settlement.program.program_id,
                          settlement.purchase_id, settlement.now)  # fmt: skip
        # the coupons it gave (a held purchase's rewards) go, unless already used
        connection = settlement.connection
        sources = given_by(connection, settlement.purchase_id)
        revoked = revoke_given(connection, settlement.purchase_id, sources, settlement.now)
        if revoked:
            settlement.answer["coupons_revoked"] = [code for code, _ in revoked]
            settlement.revoked = dict(Counter(source for _, source in revoked))

    def refund_points(self, refund: Refunding) -> int:
        if not refund.whole:  # a coupon's points go back with the last of the receipt
            return 0
        return total(refund.awards, self.name, "points")

    def refunded(self, refund: Refunding) -> None:
        if refund.whole:  # the receipt is undone: its coupons may be used again
            refund.answer["coupons_returned"] = give_back_coupons(
                refund.connection, refund.program.program_id, refund.purchase.id, refund.now
            )
        # the coupons it gave are taken back, unless used, when what earned them is gone
        sources = given_by(refund.connection, refund.purchase.id)
        undone = [source for source in sources if not refund.gift_stands(source)]
        revoked = revoke_given(refund.connection, refund.purchase.id, undone, refund.now)
        if revoked:
            refund.answer["coupons_revoked"] = [code for code, _ in revoked]
            refund.revoked = dict(Counter(source for _, source in revoked))


NONE = CouponsPriced((), [], [])


def _coupons(priced: Priced) -> CouponsPriced:
    """The receipt's coupons as its pricing left them (settled once, then kept)."""
    part = priced.parts.get(Coupons.name)
    if part is None:
        return NONE
    if isinstance(part, CouponsPriced):
        return part
    settings = priced.context.program.calculator.program
    settled = settle(part, priced.quote, (settings.money_digits, settings.points.precision))
    priced.parts[Coupons.name] = settled
    return settled
