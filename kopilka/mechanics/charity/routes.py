"""The charity's HTTP routes (docs/charity.md): `router`, the mechanic's.

A member gives through whoever acts for them — a till (`pos`), a partner's terminal,
support, or an admin: the same keys that may change a member. The report is for those who
read the program's figures: an admin, support, an analyst.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from kopilka.mechanics.charity import handlers as charity
from kopilka.mechanics.charity.model import MAX_CODE
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    MEMBER_WRITERS,
    Body,
    Database,
    IdempotencyKey,
    caller,
    created,
    now,
    run,
)
from kopilka.platform.http.schemas import AMOUNT, body, problems, text

DONATION_EXAMPLE = {
    "donation_id": "17",
    "member": "42",
    "charity": "children",
    "points": "150.00",
    "balance": {"available": "310.00"},
    "created_at": "2026-03-01T10:00:00+00:00",
}
MEMBER_EXAMPLE = {
    "round_up": "children",
    "round_up_step": "10.00",
    "given": [{"charity": "children", "points": "157.50"}],
    "charities": [
        {
            "code": "children",
            "name": "Фонд «Дети»",
            "description": None,
            "link": "https://children.example",
            "until": None,
            "open": True,
        }
    ],
}
REPORT_EXAMPLE = {
    "period": "month",
    "from": "2026-01-01",
    "until": "2026-03-31",
    "items": [
        {
            "period_start": "2026-03-01",
            "charity": "children",
            "name": "Фонд «Дети»",
            "donations": 2,
            "round_ups": 14,
            "members": 9,
            "points": "412.30",
            "round_up_points": "62.30",
            "money": "412.30",
        }
    ],
    "totals": [],
}
DONATION_SCHEMA = {
    "type": "object",
    "required": ["charity", "points"],
    "properties": {
        "charity": text(MAX_CODE),
        "points": {**AMOUNT, "description": "more than 0, at the program's precision"},
    },
    "additionalProperties": False,
}
CHOICE_SCHEMA = {
    "type": "object",
    "required": ["charity"],
    "properties": {"charity": text(MAX_CODE)},
    "additionalProperties": False,
}
READERS = ("admin", "support", "analyst")

MEMBER = "/v1/programs/{program}/members/{member}"
REPORT = "/v1/programs/{program}/charity/report"
router = APIRouter(tags=["charity"])
Giver = Annotated[keys.Principal, Depends(caller(*MEMBER_WRITERS))]


@router.post(
    MEMBER + "/donations",
    status_code=201,
    summary="A member gives points to a charity",
    openapi_extra=body(
        DONATION_SCHEMA,
        {"charity": "children", "points": "150"},
        replays=True,
        answer=(201, DONATION_EXAMPLE),
    ),
)
async def donate(
    program: str, member: str, payload: Body, engine: Database, who: Giver,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """`{charity, points}`: the points leave the member's available balance (the lots that
    burn first) for the charity's account. `422 insufficient_points` when the member has
    fewer; `422` for a charity the program does not list, `409` for one that no longer
    takes donations; another program's member is `404`. An `Idempotency-Key` makes a
    repeat answer the first donation and give nothing more."""
    answer, is_new = await run(
        engine, charity.donate, engine, program, member, payload, actor=f"key:{who.key_id}",
        now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


@router.get(
    MEMBER + "/charity",
    summary="A member's charity: the round-up's, what they gave, the charities",
    openapi_extra=problems(answer=(200, MEMBER_EXAMPLE)),
)
async def member_charity(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    return await run(engine, charity.read_member, engine, program, member, now=now())


@router.put(
    MEMBER + "/charity",
    summary="Round the member's purchases up to a charity",
    openapi_extra=body(CHOICE_SCHEMA, {"charity": "children"}, answer=(200, MEMBER_EXAMPLE)),
)
async def choose(program: str, member: str, payload: Body, engine: Database, _who: Giver) -> Any:
    """`{charity}`: from the next purchase on, the part of its points below a whole
    `round_up.step` goes to the charity. `409` when the program does not round up or the
    charity no longer takes donations."""
    return await run(engine, charity.choose, engine, program, member, payload, now=now())


@router.delete(
    MEMBER + "/charity",
    summary="Stop rounding the member's purchases up",
    openapi_extra=problems(answer=(200, MEMBER_EXAMPLE)),
)
async def stop(program: str, member: str, engine: Database, _who: Giver) -> Any:
    return await run(engine, charity.stop, engine, program, member, now=now())


Period = Annotated[str | None, Query(description="day | week | month | quarter | year")]
From = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")]
Until = Annotated[str | None, Query(description="YYYY-MM-DD")]
Reader = Annotated[Any, Depends(caller(*READERS))]


@router.get(
    REPORT,
    summary="Gifts per charity per period",
    openapi_extra=problems(answer=(200, REPORT_EXAMPLE)),
)
async def report(
    program: str, engine: Database, _who: Reader, period: Period = None, first: From = None,
    until: Until = None,
) -> Any:  # fmt: skip
    """Per charity and calendar period (default `month`, in the program's time zone) from
    `from` (default the year's first day) until `until` (default today): donations and
    round-ups counted, the members who gave, the points and their money value at the
    program's point value; `totals` per charity for the whole span."""
    return await run(engine, charity.report, engine, program, period=period, first=first,
                     last=until, now=now())  # fmt: skip


@router.get(
    REPORT + ".csv",
    summary="Gifts per charity per period, as CSV",
    response_class=Response,
    openapi_extra=problems(),
)
async def report_csv(
    program: str, engine: Database, _who: Reader, period: Period = None, first: From = None,
    until: Until = None,
) -> Response:  # fmt: skip
    """The report's lines for a spreadsheet (no cell is ever a formula)."""
    text = await run(engine, charity.report_csv, engine, program, period=period, first=first,
                     last=until, now=now())  # fmt: skip
    name = f"charity-{program}-{period or 'month'}.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
