"""The cashback routes (issue 7): `router`, included by `kopilka.platform.http.app.create_app`.

A member's cashback and payout requests are under the member; the payments side (the
payout queue, decisions, the export for the payments department) and the campaigns are
under the program's `cashback`. Decisions and exports are an admin's; a support agent
may ask for a payout on a member's behalf and read the queue.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from kopilka.mechanics.cashback import handlers as cashback
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    Body,
    Database,
    IdempotencyKey,
    OptionalBody,
    caller,
    created,
    now,
    run,
)
from kopilka.platform.http.schemas import AMOUNT, body, note, nullable_optionals, problems, text

PAYOUT_REQUEST = {
    "type": "object",
    "required": ["amount", "destination"],
    "properties": {
        "amount": AMOUNT,
        "destination": {
            "type": "object",
            "required": ["type", "number"],
            "properties": {
                "type": {"enum": ["card", "account"]},
                "number": text(64, "a card (Luhn-checked) or account"),
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
PAYOUT_EXAMPLE = {
    "id": "7",
    "member": "42",
    "card": "1000017",
    "amount": "500.00",
    "currency": "RUB",
    "destination": {"type": "card", "number": "************0003"},
    "status": "requested",
    "requested_at": "2026-03-24T10:00:00+00:00",
    "requested_by": "key:3",
    "approved_at": None,
    "approved_by": None,
    "paid_at": None,
    "paid_by": None,
    "rejected_at": None,
    "rejected_by": None,
    "note": None,
}
MEMBER_CASHBACK_EXAMPLE = {
    "available": "120.00",
    "pending": "30.00",
    "requested": "500.00",
    "debt": "0.00",
    "paid_out": "1000.00",
    "lifetime": "1650.00",
    "currency": "RUB",
    "upcoming": [{"available_at": "2026-03-24T09:00:00+00:00", "amount": "30.00"}],
}
DECISION_NOTES = {
    "approve": ("note", "approved: the payments department may pay it"),
    "reject": ("reason", "rejected (a `reason` is required): the money goes back to available"),
    "paid": ("reference", "paid (e.g. the payment order's reference): the money leaves the books"),
}
PayoutStatus = Literal["requested", "approved", "paid", "rejected"]
DECIDERS = ("admin",)
QUEUE_READERS = ("admin", "support")


MEMBER = "/v1/programs/{program}/members/{member}/cashback"
PAYOUTS = "/v1/programs/{program}/cashback"
router = APIRouter(tags=["cashback"])

# — a member's cashback —


@router.get(MEMBER, openapi_extra=problems(answer=(200, MEMBER_CASHBACK_EXAMPLE)))
async def member_cashback(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """The member's cashback in money: available (payable), pending (with when it
    becomes available), requested for payouts, debt, all paid out, lifetime (all
    given less all clawed back)."""
    return await run(engine, cashback.member_cashback, engine, program, member)


@router.get(MEMBER + "/history", openapi_extra=problems())
async def cashback_history(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """Every movement of the member's cashback, newest first: `from` and `to` accounts,
    `reason`, `actor`, the purchase; pass `next` as `before` for the next page."""
    return await run(engine, cashback.cashback_history, engine, program, member,
                     before=before, limit=limit)  # fmt: skip


@router.post(
    MEMBER + "/payouts",
    status_code=201,
    openapi_extra=body(
        PAYOUT_REQUEST,
        {"amount": "500.00", "destination": {"type": "card", "number": "4000000000000002"}},
        replays=True,
        answer=(201, PAYOUT_EXAMPLE),
    ),
)
async def request_payout(
    program: str, member: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*QUEUE_READERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Ask for `amount` of the member's available cashback to be paid to a card or an
    account: at least the program's `min_payout` (else `422 validation_error`), at most
    what is available (else `422 insufficient_cashback`). The money is set aside
    (`requested`) until the payout is paid or rejected."""
    answer, is_new = await run(
        engine, cashback.request_payout, engine, program, member, body,
        actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


# — the campaigns, the payout queue —


@router.get(PAYOUTS + "/campaigns", openapi_extra=problems())
async def campaigns(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The cashback settings and campaigns as declared, each with what it has given
    (`spent`) and what is left of its budget (`left`)."""
    return await run(engine, cashback.cashback_campaigns, engine, program)


@router.get(PAYOUTS + "/payouts", openapi_extra=problems())
async def payouts(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*QUEUE_READERS))],
    status: PayoutStatus | None = None, member: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """Payout requests newest first, by `status` and `member` if given; pass `next` as
    `before` for the next page. Destinations show their last 4 characters only."""
    return await run(engine, cashback.list_payouts, engine, program, status=status,
                     member=member, before=before, limit=limit)  # fmt: skip


@router.get(
    PAYOUTS + "/payouts/export",
    openapi_extra=problems(),
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "a CSV file"}},
)
async def export(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*DECIDERS))],
    status: PayoutStatus = "approved",
) -> Response:  # fmt: skip
    """The payouts in `status` (default: approved, i.e. to be paid) as a CSV file for
    the payments department: id, member, card, amount, currency, destination type,
    destination (last 4 characters), status, requested_at, approved_at."""
    content = await run(engine, cashback.export_payouts, engine, program, status=status)
    filename = f"{program}-cashback-payouts-{status}.csv"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content, media_type="text/csv; charset=utf-8", headers=disposition)


@router.get(PAYOUTS + "/payouts/{payout}",
            openapi_extra=problems(answer=(200, PAYOUT_EXAMPLE)))  # fmt: skip
async def payout(
    program: str, payout: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*QUEUE_READERS))],
) -> Any:  # fmt: skip
    """One payout request, with who moved it on and when."""
    return await run(engine, cashback.read_payout, engine, program, payout)


def _decision(action: str) -> None:
    """`POST …/payouts/{payout}/<action>`: approve, reject, or mark paid."""
    field, meaning = DECISION_NOTES[action]

    async def decide(
        program: str, payout: str, engine: Database,
        who: Annotated[keys.Principal, Depends(caller(*DECIDERS))],
        note: OptionalBody, idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:  # fmt: skip
        answer, _is_new = await run(
            engine, cashback.decide_payout, engine, program, payout, action, note,
            actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
        )  # fmt: skip
        return JSONResponse(answer)

    decide.__name__ = f"{action}_payout"
    decide.__doc__ = (
        f"Mark the payout {meaning}. Body (optional unless said): `{{{field}}}`. The same "
        "decision again answers the payout as it stands; a step out of order is `409`."
    )
    schema = nullable_optionals({"type": "object", "properties": {field: note()},
                                 "required": [field] if action == "reject" else [],
                                 "additionalProperties": False})  # fmt: skip
    extra = problems(answer=(200, PAYOUT_EXAMPLE))
    extra["requestBody"] = {"required": action == "reject",
                            "content": {"application/json": {"schema": schema}}}  # fmt: skip
    router.post(PAYOUTS + "/payouts/{payout}/" + action, openapi_extra=extra)(decide)


for _action in DECISION_NOTES:
    _decision(_action)
