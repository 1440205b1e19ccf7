"""The referrals' console page, the mechanic's `pages` (mounted by the console, its
template in this package's `templates/`):

    /console/{program}/referrals                        figures, the review queue   every role
    POST /console/{program}/referrals/{id}/approve      pay both sides, once        admin, support
    POST /console/{program}/referrals/{id}/reject       never pay                   admin, support

The forms carry the console's CSRF token (`form_of` checks it and the origin); each
decision is audited. A refused decision (a step out of order, a limit) comes back as the
page with the service's words.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.mechanics.referrals import console
from kopilka.mechanics.referrals import handlers as referrals
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import READERS, engine_of, form_of, operator_of, serve
from kopilka.platform.requests import now

DECIDERS = ("admin", "support")
BASE = "/console/{program}/referrals"
QUEUE_SHOWN = 100

router = APIRouter()


@router.get(BASE, include_in_schema=False)
async def referrals_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    # members' cards are on it: whoever may see members' profiles (not a marketer)
    operator = await operator_of(request, engine, program, READERS)
    return await _page(request, operator)


async def _page(
    request: Request, operator: Operator, *, status: int = 200, problem: str | None = None
) -> Response:
    engine = engine_of(request)
    program = operator.program
    shown = await serve(engine, referrals.figures, engine, program)
    queue = await serve(
        engine, referrals.list_referrals, engine, program, status="review", limit=QUEUE_SHOWN
    )
    recent = await serve(engine, referrals.list_referrals, engine, program, limit=20)
    return render(
        request,
        "referrals.html",
        status,
        operator=operator,
        program=program,
        figures=shown,
        queue=queue["items"],
        recent=recent["items"],
        can_decide=operator.role in DECIDERS,
        problem=problem,
        decided=request.query_params.get("decided"),
    )


def _decision(action: str) -> None:
    async def decide(request: Request, program: str, referral: str) -> Response:
        engine = engine_of(request)
        operator = await operator_of(request, engine, program, DECIDERS)
        note = (await form_of(request)).get("note", "").strip() or None
        try:
            await serve(engine, console.decide, engine, operator, referral, action, note, now())
        except (Conflict, InvalidInput) as error:
            problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
            return await _page(
                request,
                operator,
                status=409 if isinstance(error, Conflict) else 422,
                problem="; ".join(problems),
            )
        return redirect(request, f"/console/{program}/referrals?decided={action}")

    decide.__name__ = f"{action}_referral_page"
    router.post(BASE + "/{referral}/" + action, include_in_schema=False)(decide)


for _action in referrals.ACTIONS:
    _decision(_action)
