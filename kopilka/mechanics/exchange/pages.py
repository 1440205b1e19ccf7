"""The exchange's console page, the mechanic's `pages` (mounted by the console, its
template in this package's `templates/`):

    /console/{program}/exchange[?date=YYYY-MM-DD]   pairs, latest exchanges, the day's
                                                    reconciliation          admin, support, analyst

Read only: the pairs are part of the program file; a saga is settled by the worker.
Members' cards are on it, so it is for the roles that see members (as the referrals').
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.reading import parse_date
from kopilka.mechanics.exchange.console import exchange_overview
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import READERS, engine_of, operator_of, serve
from kopilka.platform.requests import now

router = APIRouter()


@router.get("/console/{program}/exchange", include_in_schema=False)
async def exchange_page(request: Request, program: str, date: str | None = None) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, READERS)
    day = parse_date(date) if date and len(date) == 10 else None
    shown = await serve(engine, exchange_overview, engine, program, day=day, now=now())
    return render(request, "exchange.html", operator=operator, program=program,
                  asked=date, bad_date=bool(date) and day is None, **shown)  # fmt: skip
