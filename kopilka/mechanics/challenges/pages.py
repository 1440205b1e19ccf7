"""The challenges' console page: `/console/{program}/challenges` (every role) — each
challenge with the members in progress, completions and the points its rewards cost,
and each badge with its holders."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kopilka.mechanics.challenges.handlers import challenge_figures
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, operator_of, serve

router = APIRouter()


@router.get("/console/{program}/challenges", include_in_schema=False)
async def challenges_page(request: Request, program: str) -> Response:
    engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    figures = await serve(engine, challenge_figures, engine, program)
    return render(request, "challenges.html", operator=operator, program=program, **figures)
