"""The charity's hooks into the purchase pipeline.

A purchase reads the member's chosen charity with its load (`reads`: one row, no round
trip of its own); of the points it accrues by the rules, the part below a whole step goes
to that charity — a transfer planned on the purchase's wallet, off the lot the accrual
made, and a row of `charity_donations`, both in the purchase's own write. A held
purchase accrues at its confirm, so it rounds up then; a cancelled one gave nothing. A
round-up, like a donation, is final: a refund takes back the purchase's points as it
takes back points the member spent (docs/charity.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, ScalarSelect, select

from kopilka.checkout.mechanic import JSON, Mechanic, Reads, Sale, Settlement, Step
from kopilka.kernel.ledger import AccountCode, AccountRef, Reason
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.charity import handlers
from kopilka.mechanics.charity.handlers import RoundUp, round_up_of
from kopilka.mechanics.charity.pages import router as pages
from kopilka.mechanics.charity.routes import router
from kopilka.mechanics.charity.tables import (
    CHECKS,
    ROUND_UP_COLUMNS,
    charity_choices,
    charity_donations,
)
from kopilka.platform.statements import ChildRows
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Charity(Mechanic):
    name = "charity"
    step = Step.LATER  # after every mechanic that adds to the purchase's points
    router = router
    pages = pages
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    console_link = ("charity", "Charity")
    checks = CHECKS

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """The member's charity for round-ups, read with the purchase's load."""
        settings = handlers.settings_of(program)
        if settings is None or settings.round_up_step is None:
            return None
        query = select(charity_choices.c.charity).where(charity_choices.c.member_id == member)
        return Reads((query,), lambda rows: {"chosen": rows[0][0][0] if rows[0] else None})

    def quoted(self, sale: Sale) -> None:
        given = self._round_up(sale)
        if given is not None:
            sale.answer[self.name] = handlers.round_up_json(given, _digits(sale.program))

    def planned(self, sale: Sale) -> None:
        given = self._round_up(sale)
        if given is None or sale.wallet is None or sale.member_id is None:
            return
        digits = _digits(sale.program)
        if sale.hold:  # the points, and so their round-up, come with the confirm
            sale.answer[self.name] = handlers.round_up_json(given, digits, status="on_confirm")
            return
        wallet = sale.wallet
        key = f"{wallet.program.code}:purchase:{{purchase}}:charity"
        moved = _give(wallet, key, given)
        if not moved:
            return
        row = handlers.round_up_row(sale.program, sale.member_id, moved, actor=sale.actor,
                                    now=sale.now)  # fmt: skip
        sale.rows.append(ChildRows(charity_donations, "purchase_id", ROUND_UP_COLUMNS, [row]))
        sale.answer[self.name] = handlers.round_up_json(moved, digits)

    def _round_up(self, sale: Sale) -> RoundUp | None:
        """What the purchase would give to the member's charity (before the lots say how
        much the member received of its accrual)."""
        if sale.member_id is None:
            return None
        chosen = sale.priced.read.get(self.name, {}).get("chosen")
        if sale.program.calculator.program.accrual.pending_days > 0:
            return None  # the points are not the member's to give before they activate
        return round_up_of(sale.program, chosen, sale.priced.quote.accrued, sale.now)

    def confirmed(self, settlement: Settlement) -> None:
        """A held purchase confirmed: its points accrue now, and their round-up goes to the
        charity the member had when they bought."""
        stored = settlement.stored.get(self.name)
        if not isinstance(stored, dict):
            return
        program = settlement.program
        accrued = settlement.wallet.planned(Reason.PURCHASE_ACCRUAL)
        given = round_up_of(program, stored.get("charity"), accrued, settlement.now)
        key = f"{program.calculator.program.code}:hold:{settlement.purchase_id}:charity"
        moved = _give(settlement.wallet, key, given) if given is not None else None
        if moved is None:
            del settlement.stored[self.name]
            settlement.answer.pop(self.name, None)
            return
        handlers.record_round_up(settlement.connection, program, settlement.member_id,
                                 settlement.purchase_id, moved, actor=settlement.actor,
                                 now=settlement.now)  # fmt: skip
        shown = handlers.round_up_json(moved, _digits(program))
        settlement.stored[self.name] = settlement.answer[self.name] = shown

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase cancelled or run out: it accrued nothing, so it gave nothing."""
        if self.name in settlement.stored:
            del settlement.stored[self.name]
            settlement.answer.pop(self.name, None)

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> JSON | None:
        if handlers.settings_of(program) is None:
            return None
        return handlers.member_part(connection, program, member_id, now)


def _give(wallet: Wallet, key: str, given: RoundUp) -> RoundUp | None:
    """`given` moved to its charity off the lots the purchase's points made (less when a
    debt took part of them); what was moved, or None."""
    account = AccountRef(given.charity.owner, AccountCode.CHARITY)
    moved = wallet.give_from_new_lots(key, given.points, into=account,
                                      reason=Reason.CHARITY_ROUND_UP)  # fmt: skip
    return RoundUp(given.charity, moved) if moved else None


def _digits(program: LoadedProgram) -> int:
    return program.calculator.program.points.precision
