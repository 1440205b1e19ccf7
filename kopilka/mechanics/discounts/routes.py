"""The discount routes: the program's discounts (each change a new program version) and
the paid discount cards members hold; `router`, included by
`kopilka.platform.http.app.create_app`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from kopilka.mechanics.discounts import handlers as discounts
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    Body,
    Database,
    IdempotencyKey,
    caller,
    created,
    now,
    run,
)
from kopilka.platform.http.schemas import body, problems, text

DISCOUNT = {
    "type": "object",
    "description": "One discount as under `discounts:` in the program file (docs/program.md): "
    "one effect (percent | amount | accumulative | buy_get | nth_item | cheapest_free | "
    "bundle), `when`, `stacking`, `priority`, `max_amount`, `earn_points`, `name`.",
}
DISCOUNT_EXAMPLE = {
    "name": "Бизнес-ланч −10 %",
    "percent": 10,
    "when": {"weekdays": ["mon", "tue", "wed", "thu", "fri"],
             "time": {"from": "12:00", "to": "16:00"}},
}  # fmt: skip
CARD_PURCHASE = {
    "type": "object",
    "required": ["card"],
    "properties": {
        "card": {"type": "string", "description": "a card under `discount_cards:`"},
        "payment_ref": text(),
    },
    "additionalProperties": False,
}
CARD_ANSWER = {
    "id": "1",
    "card": "gold",
    "fee": "990.00",
    "payment_ref": "T-88",
    "valid_from": "2026-03-10T09:00:00+00:00",
    "valid_until": "2027-03-10T09:00:00+00:00",
}
Code = Annotated[str, Path(min_length=1, max_length=64)]


BASE = "/v1/programs/{program}"
CARDS = BASE + "/members/{member}/discount-cards"
router = APIRouter(tags=["discounts"])


@router.get(BASE + "/discounts", openapi_extra=problems())
async def declared(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The program's discounts, limits and paid cards as its current version declares."""
    return await run(engine, discounts.list_discounts, engine, program)


@router.put(
    BASE + "/discounts/{code}",
    status_code=201,
    openapi_extra=body(DISCOUNT, DISCOUNT_EXAMPLE, replays=True),
)
async def put(
    program: str, code: Code, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin"))],
) -> JSONResponse:  # fmt: skip
    """Add (`201`) or replace (`200`) a discount: the program's next version."""
    answer, is_new = await run(engine, discounts.put_discount, engine, program, code, body,
                               actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return created(answer, is_new)


@router.delete(BASE + "/discounts/{code}", openapi_extra=problems())
async def delete(
    program: str, code: Code, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin"))],
) -> Any:  # fmt: skip
    """Remove a discount: the program's next version."""
    return await run(engine, discounts.delete_discount, engine, program, code,
                     actor=f"key:{who.key_id}", now=now())  # fmt: skip


@router.post(
    CARDS,
    status_code=201,
    openapi_extra=body(
        CARD_PURCHASE,
        {"card": "gold", "payment_ref": "T-88"},
        replays=True,
        answer=(201, CARD_ANSWER),
    ),
)
async def buy(
    program: str, member: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin", "pos", "partner", "support"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Record a paid discount card (the fee was paid at the till): in force from now, or
    from when the member's current card of that kind runs out."""
    answer, is_new = await run(engine, discounts.buy_discount_card, engine, program, member,
                               body, actor=f"key:{who.key_id}", now=now(),
                               idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@router.get(CARDS, openapi_extra=problems())
async def held(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """The member's discount cards, newest first, each with `in_force`."""
    return await run(engine, discounts.member_cards, engine, program, member, now=now())
