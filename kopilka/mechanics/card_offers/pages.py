"""Card-linked offers' console page, the mechanic's `pages` (its template in this
package's `templates/`):

    /console/{program}/card-offers               every offer's figures with a chart, the
                                                 feed's matching, the review queue
                                                 (admin, analyst, support)
    /console/{program}/card-offers/reviews/{id}  a review's decision, a form (admin, support)

The chart is drawn on the server as inline SVG (no script, nothing fetched): each
offer's cashback — paid, confirmed, pending — as one stacked bar.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.mechanics.card_offers import handlers, reports
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import engine_of, form_of, operator_of, serve
from kopilka.platform.requests import now

VIEWERS = ("admin", "analyst", "support")
DECIDERS = ("admin", "support")
BASE = "/console/{program}/card-offers"
BAR_WIDTH = 480  # the longest bar, in the chart's units

router = APIRouter()


@router.get(BASE, include_in_schema=False)
async def card_offers_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, VIEWERS)
    return await _page(request, operator)


async def _page(request: Request, operator: Operator, *, status: int = 200,
                problem: str | None = None) -> Response:  # fmt: skip
    engine = engine_of(request)
    report = await serve(engine, reports.bank_report, engine, operator.program)
    queue = await serve(engine, handlers.reviews, engine, operator.program)
    return render(request, "card_offers.html", status, operator=operator,
                  program=operator.program, offers=report["offers"], feed=report["feed"],
                  bars=chart(report["offers"]), reviews=queue["reviews"],
                  can_decide=operator.role in DECIDERS, problem=problem,
                  done=request.query_params.get("done"))  # fmt: skip


def chart(offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each offer's stacked bar: its segments' widths, scaled so the largest total fills
    `BAR_WIDTH` (figures are decimal text; widths are only drawing)."""
    parts = ("cashback_paid", "cashback_confirmed", "cashback_pending")
    totals = [sum(Decimal(offer[part]) for part in parts) for offer in offers]
    largest = max(totals, default=Decimal(0)) or Decimal(1)
    bars = []
    for row, (offer, total) in enumerate(zip(offers, totals, strict=True)):
        x = Decimal(0)
        segments = []
        for part in parts:
            width = Decimal(offer[part]) * BAR_WIDTH / largest
            segments.append({"part": part, "x": f"{x:.1f}", "width": f"{width:.1f}",
                             "value": offer[part]})  # fmt: skip
            x += width
        bars.append({"offer": offer["offer"], "y": row * 28, "total": f"{total:.2f}",
                     "segments": segments})  # fmt: skip
    return bars


@router.post(BASE + "/reviews/{review}", include_in_schema=False)
async def decide_review_page(request: Request, program: str, review: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, DECIDERS)
    form = await form_of(request)
    body: dict[str, Any] = ({"dismiss": True} if form.get("dismiss")
                            else {"location": form.get("location", "").strip()})  # fmt: skip
    work = partial(handlers.decide_review, engine, program, review, body,
                   actor=operator.actor, now=now())  # fmt: skip
    try:
        await serve(engine, work)
    except (Conflict, InvalidInput) as error:
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        return await _page(request, operator, status=409 if isinstance(error, Conflict) else 422,
                           problem="; ".join(problems))  # fmt: skip
    return redirect(request, f"/console/{program}/card-offers?done=decided")
