"""Card-linked offers' HTTP routes (docs/card_offers.md): `router`, the mechanic's.

The catalog is the program's: merchants with their locations and merchant ids, the
descriptor rules, the offers (an admin's, or a partner key's for its own merchant).
Cards are the bank's: it enrols them (a token, never the number), lists the offers
shown to one, activates one for its holder, and sends the feed — one message per call,
its transaction id the idempotency key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from kopilka.mechanics.card_offers import handlers as offers
from kopilka.mechanics.card_offers import reports
from kopilka.operators import keys
from kopilka.platform.http.common import Body, Database, caller, created, now, run
from kopilka.platform.http.schemas import AMOUNT, CODE, body, problems, text

PROGRAM = "/v1/programs/{program}"
FEED_WRITERS = ("admin", "pos")  # the bank's processing sends the feed with a till's role
CATALOG_WRITERS = ("admin",)
OFFER_WRITERS = ("admin", "partner")  # a merchant publishes its own offers
READERS = ("admin", "pos", "support", "analyst")
router = APIRouter(tags=["card-linked offers"])

LATITUDE = {"oneOf": [{"type": "string", "pattern": r"^-?[0-9]{1,2}(\.[0-9]{1,6})?$"},
                      {"type": "number", "minimum": -90, "maximum": 90}]}  # fmt: skip
LONGITUDE = {"oneOf": [{"type": "string", "pattern": r"^-?[0-9]{1,3}(\.[0-9]{1,6})?$"},
                       {"type": "number", "minimum": -180, "maximum": 180}]}  # fmt: skip
MCC = {"type": "string", "pattern": "^[0-9]{4}$"}
SCHEME = {"type": "string", "enum": ["visa", "mastercard", "mir", "unionpay", "amex", "jcb"]}
MERCHANT_SCHEMA = {
    "type": "object",
    "required": ["name", "locations"],
    "properties": {
        "name": text(200),
        "locations": {"type": "array", "maxItems": 1000, "items": {
            "type": "object",
            "required": ["code", "descriptor"],
            "properties": {
                "code": CODE, "descriptor": text(200), "mcc": MCC, "latitude": LATITUDE,
                "longitude": LONGITUDE, "address": text(300),
                "merchant_ids": {"type": "object", "additionalProperties": False,
                                 "properties": {scheme: text(64) for scheme in SCHEME["enum"]}},
            },
            "additionalProperties": False,
        }},
    },
    "additionalProperties": False,
}  # fmt: skip
MERCHANT_EXAMPLE = {
    "name": "Кофейня «Зерно»",
    "locations": [{"code": "zerno-arbat", "descriptor": "ZERNO COFFEE ARBAT", "mcc": "5814",
                   "latitude": "55.751244", "longitude": "37.618423",
                   "merchant_ids": {"visa": "4445551234", "mir": "2200123"}}],
}  # fmt: skip
RULE_SCHEMA = {
    "type": "object",
    "required": ["descriptor", "location"],
    "properties": {"descriptor": text(200), "mcc": MCC, "location": CODE},
    "additionalProperties": False,
}
OFFER_SCHEMA = {
    "type": "object",
    "required": ["merchant", "starts", "until", "cashback"],
    "properties": {
        "merchant": CODE,
        "starts": {"type": "string", "format": "date"},
        "until": {"type": "string", "format": "date"},
        "cashback": {"type": "object", "additionalProperties": False,
                     "properties": {"percent": AMOUNT, "fixed": AMOUNT}},
        "max_cashback": AMOUNT, "min_amount": AMOUNT, "max_amount": AMOUNT, "budget": AMOUNT,
        "weekdays": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
        "hours": {"type": "object", "required": ["from", "until"], "additionalProperties": False,
                  "properties": {"from": text(5), "until": text(5)}},
        "schemes": {"type": "array", "items": SCHEME},
        "activation_required": {"type": "boolean"},
        "limit_per_card": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "return_days": {"type": "integer", "minimum": 0, "maximum": 3650},
        "fee": {"type": "object", "additionalProperties": False,
                "properties": {"percent": AMOUNT, "fixed": AMOUNT}},
        "targeting": {"type": "object", "additionalProperties": False, "properties": {
            "segment": CODE, "radius_km": AMOUNT, "new_customers": {"type": "boolean"},
            "new_within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
            "lapsed_days": {"type": "integer", "minimum": 1, "maximum": 3650}}},
        "control_percent": AMOUNT,
    },
    "additionalProperties": False,
}  # fmt: skip
OFFER_EXAMPLE = {
    "merchant": "zerno", "starts": "2026-12-01", "until": "2026-12-31",
    "cashback": {"percent": "10"}, "max_cashback": "300.00", "min_amount": "500.00",
    "weekdays": [1, 2, 3, 4, 5], "activation_required": True, "limit_per_card": 3,
    "return_days": 30, "budget": "100000.00", "fee": {"percent": "2"},
    "control_percent": "10",
}  # fmt: skip
CARD_SCHEMA = {
    "type": "object",
    "required": ["scheme", "first_six", "last_four"],
    "properties": {
        "scheme": SCHEME,
        "first_six": {"type": "string", "pattern": "^[0-9]{6}$"},
        "last_four": {"type": "string", "pattern": "^[0-9]{4}$"},
        "member": text(64, "the member the card is linked to: an id or card:…, phone:…"),
        "segments": {"type": "array", "maxItems": 50, "items": CODE},
        "home": {"type": "object", "required": ["latitude", "longitude"],
                 "additionalProperties": False,
                 "properties": {"latitude": LATITUDE, "longitude": LONGITUDE}},
    },
    "additionalProperties": False,
}  # fmt: skip
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["transaction_id", "kind", "card", "amount", "currency", "at", "scheme"],
    "properties": {
        "transaction_id": text(64, "the bank's id: the message's idempotency key"),
        "kind": {"type": "string",
                 "enum": ["authorisation", "clearing", "refund", "reversal"]},
        "card": text(64, "the card's token"), "amount": AMOUNT,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "at": {"type": "string", "format": "date-time"},
        "scheme": SCHEME, "merchant_id": text(64), "descriptor": text(200), "mcc": MCC,
        "original": text(64, "the transaction a clearing, refund or reversal is about"),
    },
    "additionalProperties": False,
}  # fmt: skip
MESSAGE_EXAMPLE = {
    "transaction_id": "T-20261203-0001", "kind": "authorisation", "card": "tok_8f2a",
    "amount": "1200.00", "currency": "RUB", "at": "2026-12-03T09:15:00+03:00",
    "scheme": "visa", "merchant_id": "4445551234", "descriptor": "ZERNO COFFEE ARBAT 12",
    "mcc": "5814",
}  # fmt: skip
ANSWER_EXAMPLE = {
    "transaction_id": "T-20261203-0001", "kind": "authorisation", "card": "tok_8f2a",
    "amount": "1200.00",
    "matched": {"location": "zerno-arbat", "merchant": "zerno", "rule": "mid:visa:4445551234"},
    "offers": [{"offer": "zerno-weekday", "reason": "qualified", "status": "pending",
                "cashback": "120.00", "cashback_change": "120.00", "fee": "24.00"},
               {"offer": "zerno-first", "reason": "not_a_new_customer"}],
    "problem": None,
}  # fmt: skip


def _actor(who: keys.Principal) -> str:
    return f"key:{who.key_id}"


@router.put(PROGRAM + "/card-merchants/{merchant}", status_code=201,
            summary="Create or change a merchant",
            openapi_extra=body(MERCHANT_SCHEMA, MERCHANT_EXAMPLE, replays=True))  # fmt: skip
async def put_merchant(
    program: str, merchant: str, body: Body, engine: Database,
    _who: Annotated[keys.Principal, Depends(caller(*CATALOG_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """A merchant and its locations: each with its descriptor and MCC as the networks
    send them, its coordinates, and its merchant id per scheme. A merchant id given at
    several locations is a payment facilitator's: it only narrows the match, which the
    descriptor rules then decide. `201` when the merchant is new, `200` otherwise."""
    answer, is_new = await run(engine, offers.put_merchant, engine, program, merchant, body,
                               now=now())  # fmt: skip
    return created(answer, is_new)


@router.post(PROGRAM + "/card-rules", status_code=201, summary="Add a descriptor rule",
             openapi_extra=body(RULE_SCHEMA, {"descriptor": "SQ *ZERNO", "location":
                                              "zerno-arbat"}, replays=True))  # fmt: skip
async def add_rule(
    program: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*CATALOG_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """Transactions whose descriptor, normalised (case, punctuation, a facilitator's
    prefix and store numbers dropped), starts with this one's words — and whose MCC is
    `mcc`, when given — are at `location`. The same rule again answers `200`."""
    answer, is_new = await run(engine, offers.add_rule, engine, program, body,
                               actor=_actor(who), now=now())  # fmt: skip
    return created(answer, is_new)


@router.put(PROGRAM + "/card-offers/{offer}", status_code=201, summary="Publish or change an offer",
            openapi_extra=body(OFFER_SCHEMA, OFFER_EXAMPLE, replays=True))  # fmt: skip
async def put_offer(
    program: str, offer: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*OFFER_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """An offer of a merchant (docs/card_offers.md lists every term). A partner's key
    publishes only its own merchant's offers; another merchant is `404`. Its merchant
    never changes, and its budget is never set below what it has spent (`409`)."""
    answer, is_new = await run(engine, offers.put_offer, engine, program, offer, body,
                               actor=_actor(who), now=now(), partner=who.partner)  # fmt: skip
    return created(answer, is_new)


@router.get(PROGRAM + "/card-offers/{offer}", summary="An offer, its terms and its budget",
            openapi_extra=problems())  # fmt: skip
async def get_offer(
    program: str, offer: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    return await run(engine, offers.get_offer, engine, program, offer)


@router.put(PROGRAM + "/cards/{token}", status_code=201, summary="Enrol a card",
            openapi_extra=body(CARD_SCHEMA, {"scheme": "visa", "first_six": "427600",
                                             "last_four": "1234", "segments": ["students"]},
                               replays=True))  # fmt: skip
async def put_card(
    program: str, token: str, body: Body, engine: Database,
    _who: Annotated[Any, Depends(caller(*FEED_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """A card by the bank's token (a token that is a card number is `422`): its scheme,
    first six and last four digits, the member it is linked to if any, its holder's
    segments and home (for offers with a radius)."""
    answer, is_new = await run(engine, offers.put_card, engine, program, token, body, now=now())
    return created(answer, is_new)


@router.get(PROGRAM + "/cards/{token}/offers", summary="The offers shown to a card",
            openapi_extra=problems())  # fmt: skip
async def card_offers(
    program: str, token: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    """Live offers targeted at the card (segment, radius) and not held out of them in a
    control group, each with whether it is activated."""
    return await run(engine, offers.card_offers, engine, program, token, now=now())


@router.post(PROGRAM + "/cards/{token}/offers/{offer}/activation", status_code=201,
             summary="Activate an offer for a card",
             openapi_extra=problems(replays=True))  # fmt: skip
async def activate(
    program: str, token: str, offer: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*FEED_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """From now on the card's purchases can earn the offer. An offer not shown to the
    card is `409`; activating again answers `200` with the first activation."""
    answer, is_new = await run(engine, offers.activate, engine, program, token, offer,
                               now=now())  # fmt: skip
    return created(answer, is_new)


@router.post(PROGRAM + "/card-transactions", status_code=201,
             summary="Send a card transaction (authorisation, clearing, refund, reversal)",
             openapi_extra=body(MESSAGE_SCHEMA, MESSAGE_EXAMPLE, replays=True,
                                answer=(201, ANSWER_EXAMPLE)))  # fmt: skip
async def take_message(
    program: str, body: Body, engine: Database,
    _who: Annotated[Any, Depends(caller(*FEED_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """One message of the bank's feed. An authorisation is matched and judged against the
    merchant's offers (each offer's reason in the answer): a reward is provisionally
    qualified; its clearing confirms it on the cleared amount (payable after the offer's
    return period); a reversal releases it; a refund claws it back in proportion. The
    same message again answers `200` with the first answer; another message with the same
    `transaction_id` is `409`. An unknown card is `404`."""
    answer, is_new = await run(engine, offers.take_message, engine, program, body, now=now())
    return created(answer, is_new)


@router.get(PROGRAM + "/card-transactions/{transaction_id}",
            summary="A card transaction: how it matched, why it earned or not",
            openapi_extra=problems(answer=(200, ANSWER_EXAMPLE)))  # fmt: skip
async def get_transaction(
    program: str, transaction_id: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    return await run(engine, offers.transaction, engine, program, transaction_id)


REPORT_READERS = ("admin", "analyst", "partner")  # a partner key: its own merchant's offers
REPORT_EXAMPLE = {
    "offer": "zerno-weekday", "merchant": "zerno", "starts": "2026-12-01",
    "until": "2026-12-31", "reached": 5200, "activated": 1300, "redeeming": 410,
    "redeeming_spend": "615000.00", "cashback_pending": "4200.00",
    "cashback_confirmed": "30100.00", "cashback_paid": "27200.00", "fees": "12300.00",
    "control_cards": 520, "spend_per_reached_card": "310.40",
    "spend_per_control_card": "262.10", "incremental_sales": "251160.00",
    "budget": "100000.00", "spent": "61500.00",
}  # fmt: skip
REVIEW_SCHEMA = {
    "type": "object",
    "properties": {"location": CODE, "mcc": MCC, "dismiss": {"type": "boolean"}},
    "additionalProperties": False,
}


@router.get(PROGRAM + "/card-offers/{offer}/report", summary="An offer's figures",
            openapi_extra=problems(answer=(200, REPORT_EXAMPLE)))  # fmt: skip
async def offer_report(
    program: str, offer: str, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*REPORT_READERS))],
) -> Any:  # fmt: skip
    """Cardholders reached (shown the offer), activated, redeeming; spend on redeeming
    purchases; cashback pending, confirmed and paid; fees; and incremental sales against
    the control group (null without one). A partner key reads its own merchant's offers;
    another's is `404`."""
    return await run(engine, reports.offer_report, engine, program, offer, partner=who.partner)


@router.get(PROGRAM + "/card-reports", summary="Every offer's figures and the feed's matching",
            openapi_extra=problems())  # fmt: skip
async def bank_report(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller("admin", "analyst"))]
) -> Any:
    """For the bank: each offer's figures, and how the feed's purchases matched (by merchant
    id, by descriptor rule, not at all) with the review queue's size."""
    return await run(engine, reports.bank_report, engine, program)


@router.get(PROGRAM + "/card-reports.csv", summary="Every offer's figures as CSV",
            response_class=Response, openapi_extra=problems())  # fmt: skip
async def bank_report_csv(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller("admin", "analyst"))]
) -> Response:
    """An offer a row; no cell starts as a spreadsheet formula."""
    text = await run(engine, reports.bank_report_csv, engine, program)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="card-offers.csv"'})  # fmt: skip


@router.get(PROGRAM + "/card-reviews", summary="The review queue of unmatched purchases",
            openapi_extra=problems())  # fmt: skip
async def review_queue(
    program: str, engine: Database,
    _who: Annotated[Any, Depends(caller("admin", "support"))],
    status: Literal["open", "matched", "dismissed"] = "open",
) -> Any:  # fmt: skip
    """Unmatched purchases (the oldest 500 of the status), each with the locations its
    descriptor most resembles."""
    return await run(engine, offers.reviews, engine, program, status=status)


@router.post(PROGRAM + "/card-reviews/{review}/decision", summary="Decide a review",
             openapi_extra=body(REVIEW_SCHEMA, {"location": "zerno-arbat"}))  # fmt: skip
async def decide_review(
    program: str, review: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin", "support"))],
) -> Any:  # fmt: skip
    """`{location, mcc?}`: the descriptor is that location's; a descriptor rule is made of
    its words, and every open review it now matches is decided with it. `{dismiss: true}`:
    not the program's merchant. A decided review is `409`."""
    answer, _made = await run(engine, offers.decide_review, engine, program, review, body,
                              actor=_actor(who), now=now())  # fmt: skip
    return answer
