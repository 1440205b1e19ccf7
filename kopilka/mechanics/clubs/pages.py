"""The clubs' console page, the mechanic's `pages` (mounted by the console, its template
in this package's `templates/`):

    /console/{program}/clubs                      clubs, figures, renewals, invites  every role
    POST /console/{program}/clubs/{club}/invites  make an invite code                admin

The form carries the console's CSRF token (`form_of` checks it and the origin); making a
code is audited. A refused form comes back as the page with the service's words.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.mechanics.clubs import console
from kopilka.mechanics.clubs import handlers as clubs
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import EVERYONE, engine_of, form_of, operator_of, serve
from kopilka.platform.requests import now

BASE = "/console/{program}/clubs"
INVITERS = ("admin",)

router = APIRouter()


@router.get(BASE, include_in_schema=False)
async def clubs_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    return await _page(request, operator)


async def _page(
    request: Request, operator: Operator, *, status: int = 200, problem: str | None = None
) -> Response:
    engine = engine_of(request)
    shown = await serve(engine, clubs.clubs_overview, engine, operator.program, now=now())
    return render(
        request, "clubs.html", status, operator=operator, program=operator.program,
        clubs=shown["clubs"], renewals=shown["expected_renewals"], invites=shown["invites"],
        can_invite=operator.role in INVITERS, problem=problem,
        invited=request.query_params.get("invited"),
    )  # fmt: skip


@router.post(BASE + "/{club}/invites", include_in_schema=False)
async def create_invite(request: Request, program: str, club: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, INVITERS)
    form = await form_of(request)
    body: dict[str, Any] = {"uses": form.get("uses", "").strip() or None,
                            "valid_until": form.get("valid_until", "").strip() or None,
                            "code": form.get("code", "").strip() or None}  # fmt: skip
    if body["uses"] is not None and body["uses"].isdigit() and body["uses"].isascii():
        body["uses"] = int(body["uses"])
    try:
        answer = await serve(engine, console.create_invite, engine, operator, club, body, now())
    except (Conflict, InvalidInput) as error:
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        return await _page(request, operator, status=409 if isinstance(error, Conflict) else 422,
                           problem="; ".join(problems))  # fmt: skip
    return redirect(request, f"/console/{program}/clubs?invited={answer['code']}")
