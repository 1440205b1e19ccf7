"""The charity's console page: `/console/{program}/charity` (every role) — the charities
the program lists, and the report per charity and period (`?period=&from=&until=`), with
its CSV export at `/console/{program}/charity.csv`. A wrong query comes back as the page
with the problem named."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.periods import CalendarPeriod
from kopilka.mechanics.charity import handlers as charity
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, engine_of, operator_of, serve
from kopilka.platform.requests import now

router = APIRouter()


@router.get("/console/{program}/charity", include_in_schema=False)
async def charity_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    asked = _asked(request)
    problem, shown, status = None, None, 200
    try:
        shown = await serve(engine, charity.report, engine, program, now=now(), **asked)
    except InvalidInput as error:
        problem, status = "; ".join(str(p) for p in error.problems), 422
    charities = await serve(engine, charity.program_charities, engine, program, now=now())
    return render(request, "charity.html", status, operator=operator, program=program,
                  charities=charities, report=shown, problem=problem, asked=asked,
                  periods=[p.value for p in CalendarPeriod], today=date.today())  # fmt: skip


@router.get("/console/{program}/charity.csv", include_in_schema=False)
async def charity_csv(request: Request, program: str) -> Response:
    engine = engine_of(request)
    await operator_of(request, engine, program, EVERYONE)
    text = await serve(engine, charity.report_csv, engine, program, now=now(), **_asked(request))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="charity-{program}.csv"'},
    )


def _asked(request: Request) -> dict[str, str | None]:
    query = request.query_params
    return {"period": query.get("period") or None, "first": query.get("from") or None,
            "last": query.get("until") or None}  # fmt: skip
