"""The clubs' HTTP routes (docs/clubs.md): `router`, the mechanic's.

A member's memberships are under the member: joining (by payment, or by an invite code),
paying the next period (the same call: a payment for a club the member is in), leaving,
one membership's history. The program's clubs with their figures, and the invite codes,
are under the program's `clubs`; making an invite code is an admin's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kopilka.mechanics.clubs import handlers as clubs
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
from kopilka.platform.http.schemas import AMOUNT, CODE, body, note, problems, text

MEMBERSHIP_EXAMPLE: dict[str, Any] = {
    "club": "vip", "name": "VIP-клуб", "status": "active", "joined_by": "payment",
    "since": "2026-03-10T09:00:00+00:00", "paid_until": "2026-04-10T09:00:00+00:00",
    "in_force_until": "2026-04-13T09:00:00+00:00", "auto_renew": True, "made_by": "key:3",
    "fee": "990.00", "member": "42",
}  # fmt: skip
MEMBER_CLUBS_EXAMPLE: dict[str, Any] = {
    "memberships": [{k: v for k, v in MEMBERSHIP_EXAMPLE.items() if k != "member"}],
    "privileges": ["vip-service"],
}
HISTORY_EXAMPLE: dict[str, Any] = {
    **{k: v for k, v in MEMBERSHIP_EXAMPLE.items() if k != "member"},
    "events": [
        {"action": "join", "status": "active", "paid_until": "2026-04-10T09:00:00+00:00",
         "amount": "990.00", "points": None, "payment_ref": "PAY-2041", "invite": None,
         "actor": "key:3", "note": None, "at": "2026-03-10T09:00:00+00:00"},
    ],
}  # fmt: skip
INVITE_EXAMPLE = {
    "id": "5", "club": "friends", "code": "7KQ2MZ9PXA", "uses": 10, "used": 3, "left": 7,
    "expires_at": "2026-05-01T00:00:00+03:00", "status": "open", "note": None,
    "created_by": "key:1", "created_at": "2026-03-10T09:00:00+00:00",
}  # fmt: skip
OVERVIEW_EXAMPLE: dict[str, Any] = {
    "clubs": [{"code": "vip", "name": "VIP-клуб", "join_by": "payment", "fee": "990.00",
               "auto_renew": True, "members": 120, "joins": 140, "renewals": 60, "lapses": 15,
               "leavings": 5, "privileges": ["vip-service"]}],
    "expected_renewals": [{"id": "9", "club": "vip", "member": "42", "card": "2000000000428",
                           "due_at": "2026-04-10T09:00:00+00:00", "amount": "990.00",
                           "lapses_at": "2026-04-13T09:00:00+00:00"}],
    "invites": [INVITE_EXAMPLE],
}  # fmt: skip
JOIN_SCHEMA = {
    "type": "object",
    "required": ["club"],
    "properties": {
        "club": CODE,
        "payment": {
            "type": "object",
            "required": ["reference"],
            "properties": {"reference": text(100, "the payment's reference, unique in the "
                                                  "program"),
                           "amount": AMOUNT, "points": AMOUNT},
            "additionalProperties": False,
        },
        "invite": text(32, "an invite code of the club"),
        "note": note(),
    },
    "additionalProperties": False,
}  # fmt: skip
INVITE_SCHEMA = {
    "type": "object",
    "required": ["uses"],
    "properties": {
        "uses": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "valid_until": {"type": "string", "format": "date"},
        "code": text(32, "4–32 letters, digits and dashes; made when left out"),
        "note": note(),
    },
    "additionalProperties": False,
}
LEAVE_SCHEMA = {"type": "object", "properties": {"note": note()}, "additionalProperties": False}

WRITERS = ("admin", "pos", "support")  # a till sells a membership; support acts for a member
READERS = ("admin", "support", "analyst")
MEMBER_CLUBS = "/v1/programs/{program}/members/{member}/clubs"
CLUBS = "/v1/programs/{program}/clubs"
router = APIRouter(tags=["clubs"])


@router.post(
    MEMBER_CLUBS,
    status_code=201,
    summary="Join a club (by payment or an invite code), or pay its next period",
    openapi_extra=body(JOIN_SCHEMA, {"club": "vip", "payment": {"reference": "PAY-2041",
                                                                "amount": "990.00"}},
                       replays=True, answer=(201, MEMBERSHIP_EXAMPLE)),
)  # fmt: skip
async def join_club(
    program: str, member: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*WRITERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """A paid club: `{club, payment: {reference, amount}}` — the money must be the club's
    fee — or `{club, payment: {reference, points}}` where the club takes points (a ledger
    transfer, `club.fee`). A payment for a club the member is in pays the next period,
    from where the paid one ends (the expected payment of an automatic renewal is
    confirmed so). The same `reference` again answers `200` with the membership as it
    stands; with another member, club or amount `409 idempotency_conflict`. A club
    joined by invitation: `{club, invite}` takes one use of the code (`409` when it is
    used up or expired, or the member is in the club already; `422` for a code that is
    not the club's). An unknown club is `404`."""
    answer, is_new = await run(
        engine, clubs.join_club, engine, program, member, body, actor=f"key:{who.key_id}",
        now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


@router.get(MEMBER_CLUBS, summary="A member's clubs and their privileges",
            openapi_extra=problems(answer=(200, MEMBER_CLUBS_EXAMPLE)))  # fmt: skip
async def member_clubs(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """Every membership of the member (ended ones too, with their status as it is now) and
    the flags the clubs in force give them (`privileges`)."""
    return await run(engine, clubs.member_clubs, engine, program, member, now=now())


@router.get(MEMBER_CLUBS + "/{club}", summary="One membership and its history",
            openapi_extra=problems(answer=(200, HISTORY_EXAMPLE)))  # fmt: skip
async def membership(
    program: str, member: str, club: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """The membership with each change, newest first: joined, paid, renewal due, lapsed,
    left — who or what made it, when, with which payment or invite code."""
    return await run(engine, clubs.membership_history, engine, program, member, club, now=now())


@router.post(MEMBER_CLUBS + "/{club}/leave", summary="Leave a club",
             openapi_extra={**problems(answer=(200, MEMBERSHIP_EXAMPLE)), "requestBody": {
                 "required": False,
                 "content": {"application/json": {"schema": LEAVE_SCHEMA}}}})  # fmt: skip
async def leave_club(
    program: str, member: str, club: str, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*WRITERS))],
    body: OptionalBody,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """The membership ends now (`{note}` optional, kept in its history); an automatic
    renewal stops; nothing paid is given back. Leaving again answers it as it stands."""
    answer, _changed = await run(
        engine, clubs.leave_club, engine, program, member, club, body,
        actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return JSONResponse(answer)


@router.get(CLUBS, summary="The program's clubs, their figures and expected renewals",
            openapi_extra=problems(answer=(200, OVERVIEW_EXAMPLE)))  # fmt: skip
async def overview(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*READERS))]
) -> Any:
    """Each club with its terms, members in force, joins, renewals, lapses and leavings;
    the automatic renewals whose payment is expected; the invite codes with their uses.
    `404` when the program runs no clubs."""
    return await run(engine, clubs.clubs_overview, engine, program, now=now())


@router.post(
    CLUBS + "/{club}/invites",
    status_code=201,
    summary="Make an invite code of a club joined by invitation",
    openapi_extra=body(INVITE_SCHEMA, {"uses": 10, "valid_until": "2026-04-30"},
                       replays=True, answer=(201, INVITE_EXAMPLE)),
)  # fmt: skip
async def create_invite(
    program: str, club: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """`{uses, valid_until?, code?, note?}`: at most `uses` members join by the code, until
    the end of `valid_until` (the program's time zone). A code taken already is `409`; a
    club joined by payment has no codes (`409`)."""
    answer, is_new = await run(
        engine, clubs.create_invite, engine, program, club, body, actor=f"key:{who.key_id}",
        now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


@router.get(CLUBS + "/{club}/invites", summary="A club's invite codes and their uses",
            openapi_extra=problems(answer=(200, {"items": [INVITE_EXAMPLE]})))  # fmt: skip
async def invites(
    program: str, club: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    """The club's codes, newest first: uses allowed, taken and left, expiry and status
    (`open`, `used_up`, `expired`)."""
    return await run(engine, clubs.list_invites, engine, program, club, now=now())
