"""The referrals' HTTP routes (docs/referrals.md): `router`, the mechanic's.

A member's code, link and counts are under the member (any key: a till shows the link);
the program's referrals — the review queue, one referral with its decisions, the
figures — are an admin's, a support agent's or an analyst's to read, and approving or
rejecting one is an admin's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from kopilka.mechanics.referrals import handlers as referrals
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    Database,
    IdempotencyKey,
    OptionalBody,
    caller,
    now,
    run,
)
from kopilka.platform.http.schemas import note, nullable_optionals, problems

MEMBER_REFERRAL_EXAMPLE = {
    "code": "7KQ2MZ9PXA",
    "link": "https://zerno.example/r/7KQ2MZ9PXA",
    "invited": 3,
    "paid": 1,
    "waiting": 1,
    "in_review": 1,
    "rejected": 0,
    "earned": "300.00",
}
REFERRAL_EXAMPLE: dict[str, Any] = {
    "id": "12",
    "status": "review",
    "reasons": ["shared_phone"],
    "referrer": {"id": "41", "card": "2000000000411"},
    "friend": {"id": "42", "card": "2000000000428"},
    "code": "7KQ2MZ9PXA",
    "purchase_id": "907",
    "rewards": {"referrer": None, "friend": None},
    "created_at": "2026-03-01T10:00:00+00:00",
    "decided_at": "2026-03-16T03:00:00+00:00",
    "paid_at": None,
    "decisions": [
        {
            "action": "refer",
            "status": "waiting",
            "reasons": [],
            "note": None,
            "actor": "registration",
            "at": "2026-03-01T10:00:00+00:00",
        }
    ],
}
LIST_EXAMPLE = {
    "items": [{k: v for k, v in REFERRAL_EXAMPLE.items() if k != "decisions"}],
    "next": None,
}
FIGURES_EXAMPLE = {
    "members_with_code": 120,
    "referrals": {"waiting": 4, "review": 1, "paid": 9, "rejected": 2},
    "rewards_paid": 9,
    "cost": "2700.00",
}
Status = Literal["waiting", "review", "paid", "rejected"]
READERS = ("admin", "support", "analyst")
DECIDERS = ("admin", "support")  # as in the console
DECISION_SCHEMA = nullable_optionals(
    {
        "type": "object",
        "properties": {"note": note()},
        "additionalProperties": False,
    }
)

MEMBER = "/v1/programs/{program}/members/{member}/referral"
REFERRALS = "/v1/programs/{program}/referrals"
router = APIRouter(tags=["referrals"])


@router.get(
    MEMBER,
    summary="A member's referral code, link and referrals",
    openapi_extra=problems(answer=(200, MEMBER_REFERRAL_EXAMPLE)),
)
async def member_referral(
    program: str,
    member: str,
    engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:
    """The member's personal code and link (made now for a member who has none yet), the
    friends they invited by status (`waiting`, `in_review`, `paid`, `rejected`) and the
    points their paid referrals earned them. `404` when the program runs no referrals;
    `409` for a blocked or erased member."""
    return await run(engine, referrals.member_referral, engine, program, member, now=now())


@router.get(
    REFERRALS,
    summary="The program's referrals (the review queue: status=review)",
    openapi_extra=problems(answer=(200, LIST_EXAMPLE)),
)
async def list_referrals(
    program: str,
    engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
    status: Status | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Referrals newest first, of one `status` when given — `review` lists the queue a
    person decides, each with its `reasons`; pass `next` as `before` for the next page."""
    return await run(
        engine, referrals.list_referrals, engine, program, status=status, before=before, limit=limit
    )


@router.get(
    REFERRALS + "/figures",
    summary="The referrals' figures",
    openapi_extra=problems(answer=(200, FIGURES_EXAMPLE)),
)
async def figures(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*READERS))]
) -> Any:
    """Members with a code, referrals by status, rewards paid (referrals paid to both
    sides) and what they cost in points."""
    return await run(engine, referrals.figures, engine, program)


@router.get(
    REFERRALS + "/{referral}",
    summary="One referral and its decisions",
    openapi_extra=problems(answer=(200, REFERRAL_EXAMPLE)),
)
async def read_referral(
    program: str,
    referral: str,
    engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:
    """The referral with every decision on it: made at registration, judged by the
    worker, approved or rejected by a person — who, when, what and why."""
    return await run(engine, referrals.read_referral, engine, program, referral)


def _decision(action: str, summary: str, meaning: str) -> None:
    async def decide(
        program: str,
        referral: str,
        engine: Database,
        who: Annotated[keys.Principal, Depends(caller(*DECIDERS))],
        body: OptionalBody,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        answer, _changed = await run(
            engine,
            referrals.decide,
            engine,
            program,
            referral,
            action,
            body,
            actor=f"key:{who.key_id}",
            now=now(),
            idempotency_key=idempotency_key,
        )
        return JSONResponse(answer)

    decide.__name__ = f"{action}_referral"
    decide.__doc__ = (
        f"{meaning} Body (optional): `{{note}}`, at most 1,000 characters, kept with the "
        "decision. The same decision again answers the referral as it stands and pays "
        "nothing more; a step out of order is `409`; another program's referral is `404`."
    )
    extra = problems(answer=(200, REFERRAL_EXAMPLE))
    extra["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": DECISION_SCHEMA}},
    }
    router.post(REFERRALS + "/{referral}/" + action, summary=summary, openapi_extra=extra)(decide)


_decision(
    "approve",
    "Approve a referral in review: both sides are paid, once",
    "Approve a referral in review: both sides are paid now, exactly once (`409` when "
    "paying would pass the referrer's limits).",
)
_decision(
    "reject",
    "Reject a referral: it never pays",
    "Reject a referral in review or still waiting: it never pays.",
)
