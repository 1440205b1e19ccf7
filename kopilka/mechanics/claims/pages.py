"""The claims' console page, the mechanic's `pages` (mounted by the console, its template
in this package's `templates/`):

    /console/{program}/claims                       the queue, its SLA clocks;
                                                    the latest decisions              not marketers
    POST /console/{program}/claims                  file a claim                      admin, support
    POST /console/{program}/claims/{id}/confirm     process it as its purchase, once  admin, partner
    POST /console/{program}/claims/{id}/reject      with its reason                   admin, partner

The queue is the open claims, the nearest deadline first, each with the time left to its
decision or how late it is. The forms carry the console's CSRF token (`form_of` checks it
and the origin); every step is audited. A refused step comes back as the page with the
service's words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.mechanics.claims import console
from kopilka.mechanics.claims import handlers as claims
from kopilka.mechanics.claims.model import DECISIONS, clock
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import READERS, engine_of, form_of, operator_of, serve
from kopilka.platform.requests import now

FILERS = ("admin", "support")  # the service centre
# who decides for the partner in the console: the program's admin, and a partner's own
# operator — who sees and decides its partner's claims only (`console.partner_of`)
DECIDERS = ("admin", "partner")
BASE = "/console/{program}/claims"
QUEUE_SHOWN = 100
RECENT_SHOWN = 20

router = APIRouter()


@router.get(BASE, include_in_schema=False)
async def claims_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, (*READERS, "partner"))
    return await _page(request, operator)


async def _page(
    request: Request, operator: Operator, *, status: int = 200, problem: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    engine = engine_of(request)
    program, partner, moment = operator.program, console.partner_of(operator), now()
    queue = await serve(engine, claims.claims_queue, engine, program, now=moment,
                        limit=QUEUE_SHOWN, partner=partner)  # fmt: skip
    recent = await serve(engine, claims.list_claims, engine, program, now=moment,
                         limit=RECENT_SHOWN, partner=partner)  # fmt: skip
    return render(
        request,
        "claims.html",
        status,
        operator=operator,
        program=program,
        queue=[_with_clock(item, moment) for item in queue],
        recent=[item for item in recent["items"] if item["status"] != "open"],
        can_decide=operator.role in DECIDERS,
        can_file=operator.role in FILERS,
        problem=problem,
        form=form or {},
        done=request.query_params.get("done"),
    )


def _with_clock(item: dict[str, Any], moment: datetime) -> dict[str, Any]:
    shown = clock(datetime.fromisoformat(item["due_at"]), moment)
    return {**item, "clock": {"late": shown.late, "hours": shown.hours,
                              "minutes": shown.rest_minutes}}  # fmt: skip


async def _step(
    request: Request, operator: Operator, work: Callable[[], Awaitable[Any]], done: str,
    form: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """Run a step; the page with the service's words when it is refused."""
    try:
        await work()
    except (Conflict, InvalidInput) as error:  # (a claim not found is the 404 page)
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        return await _page(request, operator, status=409 if isinstance(error, Conflict) else 422,
                           problem="; ".join(problems), form=form)  # fmt: skip
    return redirect(request, f"/console/{operator.program}/claims?done={done}")


@router.post(BASE, include_in_schema=False)
async def file_claim(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, FILERS)
    form = await form_of(request)
    work = partial(serve, engine, console.file_claim, engine, operator, form, now())
    return await _step(request, operator, work, "file", form)


def _decision(action: str) -> None:
    async def decide(request: Request, program: str, claim: str) -> Response:
        engine = engine_of(request)
        operator = await operator_of(request, engine, program, DECIDERS)
        reason = (await form_of(request)).get("reason", "").strip() or None
        work = partial(serve, engine, console.decide, engine, operator, claim, action, reason,
                       now())  # fmt: skip
        return await _step(request, operator, work, action)

    decide.__name__ = f"{action}_claim_page"
    router.post(BASE + "/{claim}/" + action, include_in_schema=False)(decide)


for _action in DECISIONS:
    _decision(_action)
