"""The stamp cards' hooks into the purchase pipeline.

A purchase reads what the member's cards hold with its load (`reads`: one row per card,
no round trip of its own), works out each card's stamps and rewards from the priced
lines, and writes them in its own statement: the member's running state (`Sale.bumps`),
the purchase's rows of each card (`Sale.rows`), points rewards as the purchase's own
postings, coupon rewards asked of the coupons mechanic (`Sale.coupons_wanted`). A refund
takes back what the lines it returns earned (`refund_points`, `refunded`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, ScalarSelect, select

from kopilka.checkout.mechanic import (
    JSON,
    CouponWanted,
    Mechanic,
    Reads,
    Refunding,
    Sale,
    Settlement,
    Step,
    Undone,
    confirm_points,
)
from kopilka.checkout.records import Award
from kopilka.kernel.ledger import Reason
from kopilka.mechanics.stamps import handlers
from kopilka.mechanics.stamps.handlers import CardProgress, cards_of
from kopilka.mechanics.stamps.pages import router
from kopilka.mechanics.stamps.tables import (
    CHECKS,
    PURCHASE_STAMP_COLUMNS,
    member_stamps,
    purchase_stamps,
)
from kopilka.members.standing import local_day
from kopilka.platform.statements import ChildRows
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Stamps(Mechanic):
    name = "stamps"
    step = Step.LATER
    pages = router
    templates = HERE / "templates"
    translations = HERE / "locale"  # its page's texts, ru and en
    migrations = HERE / "migrations"
    console_link = ("stamps", "Stamp cards")
    checks = CHECKS

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """What the member's cards hold: one row per card, read with the purchase's load."""
        if not cards_of(program.calculator.program):
            return None
        held = member_stamps.c
        query = select(held.card, held.held).where(held.member_id == member)
        return Reads((query,), lambda rows: {"held": {card: int(n) for card, n in rows[0]}})

    def quoted(self, sale: Sale) -> None:
        moved = _progress(sale)
        if moved:
            digits = sale.program.calculator.program.points.precision
            sale.answer[self.name] = [handlers.progress_json(one, digits) for one in moved]

    def planned(self, sale: Sale) -> None:
        if sale.wallet is None or sale.member_id is None:
            return
        moved = _progress(sale)
        if not moved:
            return
        member_id = sale.member_id
        digits = sale.program.calculator.program.points.precision
        rows = []
        for one in moved:
            points = self._reward(sale, one)
            sale.bumps.append(one.bump(member_id))
            rows.append({"program_id": sale.program.program_id, "member_id": member_id,
                         "card": one.card.code, "size": one.card.stamps,
                         "stamps": one.earned, "rewards": one.rewards,
                         "points": points, "stamps_back": 0, "rewards_back": 0,
                         "created_at": sale.now})  # fmt: skip
        sale.rows.append(ChildRows(purchase_stamps, "purchase_id", PURCHASE_STAMP_COLUMNS, rows))
        sale.answer[self.name] = [handlers.progress_json(one, digits) for one in moved]

    def _reward(self, sale: Sale, one: CardProgress) -> int:
        """The rewards `one` completes: points with the purchase's own postings, or a
        personal coupon each; the points given."""
        reward = one.card.reward
        if not one.rewards:
            return 0
        if reward.coupon is not None:
            for _ in range(one.rewards):
                sale.coupons_wanted.append(CouponWanted(
                    self.name, reward.coupon, f"stamp card {one.card.code}"))  # fmt: skip
            return 0
        assert reward.points is not None
        assert sale.wallet is not None
        points = reward.points * one.rewards
        wallet = sale.wallet
        if not sale.hold:  # a held purchase's come at its confirm
            wallet.accrue(f"{wallet.program.code}:purchase:{{purchase}}:stamps:{one.card.code}",
                          points, reason=Reason.MECHANIC,
                          pending=wallet.program.accrual.pending_days > 0)  # fmt: skip
        sale.awards.append(Award(self.name, "points", points, source=one.card.code))
        return points

    def confirmed(self, settlement: Settlement) -> None:
        """A held purchase confirmed: the points of the rewards its stamps completed."""
        confirm_points(settlement, self.name)

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase cancelled (or run out): its stamps and rewards undone."""
        program = settlement.program.calculator.program
        purchase = Undone(settlement.purchase_id, settlement.member_id, settlement.now)
        plan = handlers.refund_plan(settlement.connection, program, purchase, [], undo=True,
                                    coupons=settlement.revoked.get(self.name, 0))  # fmt: skip
        if plan:
            handlers.take_back(settlement.connection, settlement.member_id, plan)
            digits = program.points.precision
            settlement.answer["stamps_back"] = handlers.back_json(plan, digits)

    def refund_points(self, refund: Refunding) -> int:
        return sum(back.points for back in _refund_plan(refund))

    def gift_stands(self, refund: Refunding) -> bool:
        """A card's coupon reward stands unless the refund takes that reward back."""
        return not any(back.rewards for back in _refund_plan(refund, coupons=None))

    def refunded(self, refund: Refunding) -> None:
        plan = _refund_plan(refund, coupons=refund.revoked.get(self.name, 0))
        if not plan:
            return
        handlers.take_back(refund.connection, int(refund.purchase.member_id), plan)
        digits = refund.program.calculator.program.points.precision
        refund.answer["stamps_back"] = handlers.back_json(plan, digits)

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> JSON | None:
        cards = handlers.member_cards(connection, program.calculator.program, member_id, now)
        return {"cards": cards} if cards else None


def _progress(sale: Sale) -> list[CardProgress]:
    program = sale.program.calculator.program
    cards = cards_of(program)
    if not cards or sale.member is None:
        return []
    amounts = {line.n: line.amount for line in sale.priced.quote.lines}
    lines = handlers.stamp_lines(program, sale.receipt, amounts)
    held = sale.priced.read.get("stamps", {}).get("held", {})
    # the program's day of processing, as a refund reads the purchase's (its created_at)
    return handlers.progress(cards, held, lines, local_day(sale.now, program.timezone))


def _refund_plan(refund: Refunding, coupons: int | None = 0) -> list[handlers.CardBack]:
    """What the refund takes back on each card; worked out again by each hook that asks
    (the same reads, inside the refund's transaction with the member locked). `coupons`:
    the coupon rewards revoked (None: as many as it would take)."""
    return handlers.refund_plan(refund.connection, refund.program.calculator.program,
                                refund.purchase, refund.left, coupons=coupons)  # fmt: skip
