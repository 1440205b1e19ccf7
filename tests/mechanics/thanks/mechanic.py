"""The thanks mechanic's model, section, hooks and console page."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine, ScalarSelect, func, select, update

from kopilka.checkout.mechanic import Mechanic, Reads, Refunding, Sale, Step
from kopilka.checkout.records import Award, total
from kopilka.kernel.ledger import Reason
from kopilka.kernel.money import format_minor, to_minor
from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, operator_of, serve
from kopilka.platform.statements import ChildRows
from kopilka.platform.tables import members, programs
from kopilka.programs.handlers import LoadedProgram
from tests.mechanics.thanks.tables import thanks_given

HERE = Path(__file__).resolve().parent
GIVEN_COLUMNS = ("program_id", "member_id", "points", "taken_back", "created_at")


@dataclass(frozen=True)
class ThanksSettings:
    points: int  # minor units of points
    min_total: int  # minor units of money


def parse_section(top: Reader, context: SectionContext) -> ThanksSettings | None:
    section = top.mapping("thanks", ("points", "min_total"))
    if section is None:
        return None
    points = section.decimal("points", required=True, minimum=Decimal(0))
    min_total = section.decimal("min_total", minimum=Decimal(0)) or Decimal(0)
    return ThanksSettings(to_minor(points or Decimal(0), context.point_digits) or 0,
                          to_minor(min_total, context.money_digits) or 0)  # fmt: skip


class Thanks(Mechanic):
    name = "thanks"
    step = Step.LATER
    templates = HERE / "templates"
    migrations = HERE / "migrations"

    def __init__(self) -> None:
        self.pages = APIRouter()
        self.pages.add_api_route("/console/{program}/thanks", thanks_page, methods=["GET"],
                                 include_in_schema=False)  # fmt: skip

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """How many times the member was thanked (and not taken back): sent with the
        purchase's load, so this read costs no round trip of its own."""
        if not isinstance(program.calculator.program.sections.get("thanks"), ThanksSettings):
            return None
        given = thanks_given.c
        query = select(func.count()).where(given.member_id == member, given.taken_back == 0)
        return Reads((query,), lambda rows: {"thanked_before": int(rows[0][0][0])})

    def quoted(self, sale: Sale) -> None:
        points = _earned(sale)
        if points:
            sale.answer["thanks"] = _thanks_json(sale, points)

    def planned(self, sale: Sale) -> None:
        points = _earned(sale)
        if not points or sale.hold or sale.wallet is None:
            return
        wallet = sale.wallet
        wallet.accrue(f"{wallet.program.code}:purchase:{{purchase}}:thanks", points,
                      reason=Reason.MECHANIC,
                      pending=wallet.program.accrual.pending_days > 0)  # fmt: skip
        sale.answer["thanks"] = _thanks_json(sale, points)
        sale.awards.append(Award(self.name, "points", points))  # a typed record of it
        # its own row, in the purchase's own write: it costs no round trip of its own
        sale.rows.append(ChildRows(thanks_given, "purchase_id", GIVEN_COLUMNS, [{
            "program_id": sale.program.program_id, "member_id": sale.member_id,
            "points": points, "taken_back": 0, "created_at": sale.now,
        }]))  # fmt: skip

    def refund_points(self, refund: Refunding) -> int:
        if not refund.whole:  # its points go back with the last of the receipt
            return 0
        return total(refund.awards, self.name, "points")

    def refunded(self, refund: Refunding) -> None:
        points = self.refund_points(refund)
        if points:
            refund.connection.execute(
                update(thanks_given).where(thanks_given.c.purchase_id == refund.purchase.id)
                .values(taken_back=points)
            )  # fmt: skip
            digits = refund.program.calculator.program.points.precision
            refund.answer["thanks_back"] = format_minor(points, digits)


def _earned(sale: Sale) -> int:
    settings = sale.program.calculator.program.sections.get("thanks")
    if not isinstance(settings, ThanksSettings) or sale.member is None:
        return 0
    return settings.points if sale.priced.quote.total >= settings.min_total else 0


def _thanks_json(sale: Sale, points: int) -> dict[str, Any]:
    digits = sale.program.calculator.program.points.precision
    before = sale.priced.read.get("thanks", {}).get("thanked_before", 0)
    return {"points": format_minor(points, digits), "note": "thank you for coming back",
            "thanked_before": before}  # fmt: skip


def given_by_member(engine: Engine, program_code: str) -> list[dict[str, Any]]:
    t = thanks_given.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(members.c.card, func.count(), func.sum(t.points),
                   func.sum(t.taken_back))
            .join(members, members.c.id == t.member_id)
            .join(programs, programs.c.id == t.program_id)
            .where(programs.c.code == program_code)
            .group_by(members.c.card).order_by(members.c.card)
        ).all()  # fmt: skip
    return [{"member": member, "purchases": count, "points": format_minor(int(points), 2),
             "taken_back": format_minor(int(back), 2)}
            for member, count, points, back in rows]  # fmt: skip


async def thanks_page(request: Request, program: str) -> Response:
    engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    rows = await serve(engine, given_by_member, engine, program)
    return render(request, "thanks.html", operator=operator, program=program, rows=rows)
