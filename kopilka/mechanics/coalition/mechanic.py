"""The coalition's hooks into the purchase pipeline.

Every purchase of a program with `partner_terms` records the partner it was made at
(`purchase_partners`, a row in the purchase's own write), which settlement joins the
ledger to. A purchase at a prepaid partner draws what it earns from the partner's
blocks: what they have left rides in the purchase's load (`reads`), the draw is a
running total added to in the purchase's own statement (`Sale.bumps`), and the database
refuses a draw beyond what was bought — so a purchase that would earn more than is left
is refused whole (`prepaid_points_exhausted`), never given points nobody paid for. A
refund or a cancel gives the drawn points back to the blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import ScalarSelect, func, select, update

from kopilka.checkout.mechanic import Mechanic, Reads, Refunding, Sale, Settlement, Step
from kopilka.checkout.pricing import Priced
from kopilka.checkout.records import POINTS
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.mechanics.coalition import handlers
from kopilka.mechanics.coalition.model import HUNDRED, Billing, PartnerTerms, PrepaidExhausted
from kopilka.mechanics.coalition.pages import router as pages
from kopilka.mechanics.coalition.routes import router
from kopilka.mechanics.coalition.section import coalition_of
from kopilka.mechanics.coalition.tables import (
    CHECKS,
    PREPAID,
    PURCHASE_PARTNER_COLUMNS,
    partner_prepaid,
    purchase_partners,
)
from kopilka.platform.statements import Bump, ChildRows, add_to_totals
from kopilka.platform.tables import transfers
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent
EARNED_KINDS = ("accrual", "points")  # the rules' points on a line; a mechanic's points


class Coalition(Mechanic):
    name = "coalition"
    step = Step.LATER
    router = router
    pages = pages
    templates = HERE / "templates"
    translations = HERE / "locale"  # its pages' texts, ru and en
    migrations = HERE / "migrations"
    checks = CHECKS

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """What the prepaid partners' blocks have left: a row per prepaid partner."""
        del member  # the blocks are the partner's, not the member's
        settings = coalition_of(program.calculator.program.sections)
        prepaid = [terms.partner for terms in (settings.terms if settings else ())
                   if terms.billing is Billing.PREPAID]  # fmt: skip
        if not prepaid:
            return None
        state = partner_prepaid.c
        query = select(state.partner, state.bought, state.drawn).where(
            state.program_id == program.program_id, state.partner.in_(prepaid)
        )
        return Reads((query,), lambda rows: {"prepaid": {p: (b, d) for p, b, d in rows[0]}})

    def admit(self, priced: Priced) -> None:
        """Refuse a purchase at a prepaid partner whose rules' points its blocks cannot
        pay for (before anything is planned, so a copy of a receipt already processed is
        still answered as the replay it is)."""
        program = priced.context.program.calculator.program
        partner = _prepaid_partner(program, priced.context.receipt.location)
        if partner is not None and priced.context.member_id is not None:
            _refuse_beyond(
                program, priced.read.get(self.name, {}), partner, int(priced.quote.accrued)
            )

    def planned(self, sale: Sale) -> None:
        program = sale.program.calculator.program
        settings = coalition_of(program.sections)
        partner = handlers.partner_at(program, sale.receipt.location)
        if settings is None or partner is None:
            return
        terms = settings.of(partner)
        if terms is not None:
            _funded_by(sale, terms)
        drawn = 0
        if terms is not None and terms.billing is Billing.PREPAID and sale.member is not None:
            drawn = _earned(sale)  # with the points other mechanics give with it
            _refuse_beyond(program, sale.priced.read.get(self.name, {}), partner, drawn)
            if drawn:
                sale.bumps.append(Bump(PREPAID, (sale.program.program_id, partner), (0, drawn)))
        sale.rows.append(ChildRows(purchase_partners, "purchase_id", PURCHASE_PARTNER_COLUMNS, [
            {"program_id": sale.program.program_id, "partner": partner, "drawn": drawn,
             "drawn_back": 0}]))  # fmt: skip

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase cancelled: what it drew goes back to the blocks."""
        _give_back(settlement.connection, settlement.purchase_id, None)

    def refunded(self, refund: Refunding) -> None:
        """What the refund took back of the purchase's points goes back to the blocks."""
        taken = refund.connection.execute(
            select(func.coalesce(func.sum(transfers.c.amount), 0)).where(
                transfers.c.refund_id == refund.refund_row,
                transfers.c.reason.in_(handlers.TAKEN_BACK))
        ).scalar_one()  # fmt: skip
        _give_back(refund.connection, int(refund.purchase.id), int(taken))


def _prepaid_partner(program: Program, location: str | None) -> str | None:
    settings = coalition_of(program.sections)
    partner = handlers.partner_at(program, location)
    terms = settings.of(partner) if settings is not None and partner is not None else None
    return partner if terms is not None and terms.billing is Billing.PREPAID else None


def _refuse_beyond(program: Program, read: Mapping[str, Any], partner: str, points: int) -> None:
    left = handlers.prepaid_left(read, partner) or 0
    if points > left:
        digits = program.points.precision
        raise PrepaidExhausted(
            f"partner {partner!r} has {format_minor(left, digits)} prepaid points left and "
            f"this purchase would earn {format_minor(points, digits)}: the partner buys a "
            "block, or the sale goes without the card")  # fmt: skip


def _funded_by(sale: Sale, terms: PartnerTerms) -> None:
    """Who funds the points the purchase earns, on its records: the partner (its code),
    the program, or both (`<partner>:<its percent>`, the program paying the rest)."""
    share = terms.partner_percent
    if share == 0:
        return
    funder = terms.partner if share == HUNDRED else f"{terms.partner}:{share.normalize():f}"
    sale.awards[:] = [
        replace(award, funded_by=funder)
        if award.unit == POINTS and award.kind in EARNED_KINDS
        else award
        for award in sale.awards
    ]


def _earned(sale: Sale) -> int:
    """The points the purchase earns: the rules' and those other mechanics give with it."""
    others = sum(award.amount for award in sale.awards
                 if award.unit == POINTS and award.kind == "points")  # fmt: skip
    return int(sale.priced.quote.accrued) + others


def _give_back(connection: Any, purchase_id: int, points: int | None) -> None:
    """Give `points` (None: all it still holds) of what a purchase drew back to its
    partner's blocks."""
    row = connection.execute(
        select(purchase_partners).where(purchase_partners.c.purchase_id == purchase_id)
    ).one_or_none()
    if row is None or row.drawn == row.drawn_back:
        return
    back = min(row.drawn - row.drawn_back, row.drawn if points is None else points)
    if back <= 0:
        return
    connection.execute(update(purchase_partners)
                       .where(purchase_partners.c.purchase_id == purchase_id)
                       .values(drawn_back=purchase_partners.c.drawn_back + back))  # fmt: skip
    add_to_totals(connection, [Bump(PREPAID, (row.program_id, row.partner), (0, -back))])
