"""Coupons in the purchase pipeline: their points, their redemptions, their return.

Which coupons apply, and the discount each gives, is decided when the receipt is priced
(`kopilka.checkout.pricing`, the coupons' step after the program's discounts); here the
coupons' points are credited apart from the rules' (with their own reason), the coupons
are taken when the purchase is written, and given back when it is cancelled or wholly
refunded.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from kopilka.checkout.mechanic import Mechanic, Refunding, Sale, Settlement, Step
from kopilka.checkout.records import Award, total
from kopilka.kernel.ledger import Reason
from kopilka.kernel.money import format_minor, to_minor
from kopilka.mechanics.coupons.handlers import give_back_coupons, redeem_coupons
from kopilka.mechanics.coupons.pages import router


class Coupons(Mechanic):
    name = "coupons"
    step = Step.COUPONS
    pages = router  # the campaigns' console pages
    templates = Path(__file__).parent / "templates"

    def quoted(self, sale: Sale) -> None:
        sale.answer["coupons"] = sale.priced.coupons
        points = sale.priced.coupon_points
        balance = sale.answer.get("balance")
        if points and balance is not None:  # shown as the purchase will credit them
            settings = sale.program.calculator.program
            where = "pending" if settings.accrual.pending_days > 0 else "available"
            digits = settings.points.precision
            shown = to_minor(Decimal(balance[where]), digits) or 0
            balance[where] = format_minor(shown + points, digits)

    def planned(self, sale: Sale) -> None:
        sale.answer["coupons"] = sale.priced.coupons
        sale.awards += [Award(self.name, "points", given, source=check.code)
                        for check, _, given in sale.priced.applied if given]  # fmt: skip
        points = sale.priced.coupon_points
        if sale.wallet is not None and points and not sale.hold:  # a hold's come at confirm
            wallet = sale.wallet
            key = f"{wallet.program.code}:purchase:{{purchase}}:coupon"
            wallet.accrue(key, points, reason=Reason.COUPON,
                          pending=wallet.program.accrual.pending_days > 0)  # fmt: skip

    def completed(self, sale: Sale) -> None:
        assert sale.purchase_id is not None
        redeem_coupons(sale.connection, sale.program.program_id, sale.purchase_id,
                       sale.member_id, sale.priced.applied, sale.now)  # fmt: skip

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

    def refund_points(self, refund: Refunding) -> int:
        if not refund.whole:  # a coupon's points go back with the last of the receipt
            return 0
        return total(refund.awards, self.name, "points")

    def refunded(self, refund: Refunding) -> None:
        if refund.whole:  # the receipt is undone: its coupons may be used again
            refund.answer["coupons_returned"] = give_back_coupons(
                refund.connection, refund.program.program_id, refund.purchase.id, refund.now
            )
