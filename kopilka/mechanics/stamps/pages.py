"""The stamp cards' console page: `/console/{program}/stamps` (every role) — each card
of the program with its figures: members in progress, members rewarded, stamps given,
rewards given and their cost in points, net of refunds."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kopilka.mechanics.stamps.handlers import card_figures
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, operator_of, serve

router = APIRouter()


@router.get("/console/{program}/stamps", include_in_schema=False)
async def stamps_page(request: Request, program: str) -> Response:
    engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    cards = await serve(engine, card_figures, engine, program)
    return render(request, "stamps.html", operator=operator, program=program, cards=cards)
