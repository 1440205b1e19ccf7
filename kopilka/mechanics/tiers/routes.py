"""The tier routes: the program's tiers as declared, a member's tier set by hand and the
history of a member's tier; `router`, included by `kopilka.platform.http.app.create_app`.
They sit in the API beside the program's and the members' routes (their tags)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from kopilka.mechanics.tiers import handlers as tiers
from kopilka.operators import keys
from kopilka.platform.http import examples, schemas
from kopilka.platform.http.common import ANY_ROLE, Body, Database, caller, now, run
from kopilka.platform.http.schemas import body, problems

MEMBER = "/v1/programs/{program}/members/{member}"
router = APIRouter()


@router.get("/v1/programs/{program}/tiers", tags=["programs"],
            openapi_extra=problems(answer=(200, examples.TIERS)))  # fmt: skip
async def tier_levels(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The program's tiers as declared: the window, the review period, the grace
    days, and each level with what qualifies for it and its privileges."""
    return await run(engine, tiers.program_tiers, engine, program)


@router.put(
    MEMBER + "/tier",
    tags=["members"],
    openapi_extra=body(
        schemas.TIER,
        {"tier": "vip", "until": "2026-12-31", "reason": "the seed's temporary VIP"},
        answer=(200, examples.MEMBER_TIER),
    ),
)
async def set_tier(
    program: str, member: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin", "support"))],
) -> Any:  # fmt: skip
    """Set the member's tier by hand `{tier, until?, reason}` (audited in the tier
    history); a review never lowers it before `until`."""
    return await run(engine, tiers.set_tier, engine, program, member, body,
                     actor=f"key:{who.key_id}", now=now())  # fmt: skip


@router.get(MEMBER + "/tiers", tags=["members"],
            openapi_extra=problems(answer=(200, examples.TIER_HISTORY)))  # fmt: skip
async def tier_history(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """Every change of the member's tier, newest first: from, to, why and who; pass
    `next` as `before` for the next page."""
    return await run(engine, tiers.tier_history_of, engine, program, member,
                     before=before, limit=limit)  # fmt: skip
