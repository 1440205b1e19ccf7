"""The bounce-back offers' console page: `/console/{program}/bounce-back` (every role) —
each offer with the coupons it gave and those refunds took back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine, func, select

from kopilka.mechanics.bounce_back.model import Offer
from kopilka.mechanics.bounce_back.section import KEY
from kopilka.mechanics.bounce_back.tables import bounce_backs
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, operator_of, serve
from kopilka.programs.handlers import load_program

router = APIRouter()


def offer_figures(engine: Engine, program_code: str) -> list[dict[str, Any]]:
    b = bounce_backs.c
    with engine.connect() as connection:
        loaded = load_program(connection, program_code)
        counts = {row.offer: row for row in connection.execute(
            select(b.offer, func.count().label("given"),
                   func.count(b.taken_back_at).label("taken_back"))
            .where(b.program_id == loaded.program_id).group_by(b.offer)
        ).all()}  # fmt: skip
    found = loaded.calculator.program.sections.get(KEY)
    offers: tuple[Offer, ...] = found if isinstance(found, tuple) else ()
    return [{"offer": offer.code, "name": offer.name, "campaign": offer.coupon,
             "given": int(counts[offer.code].given) if offer.code in counts else 0,
             "taken_back": int(counts[offer.code].taken_back) if offer.code in counts else 0}
            for offer in offers]  # fmt: skip


@router.get("/console/{program}/bounce-back", include_in_schema=False)
async def bounce_back_page(request: Request, program: str) -> Response:
    engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    offers = await serve(engine, offer_figures, engine, program)
    return render(request, "bounce_back.html", operator=operator, program=program, offers=offers)
