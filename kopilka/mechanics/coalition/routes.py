"""The coalition's HTTP routes (docs/coalition.md): a partner's position, its prepaid
blocks, its statements (draft, closed, CSV, PDF), corrections and its exit.

An admin sees and does everything; an analyst reads; a key bound to a partner (`keys
create --role partner --partner P`) reads its own partner only — another partner is, to
it, a partner that does not exist (404), as another program's is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from kopilka.kernel.errors import Forbidden, NotFound
from kopilka.mechanics.coalition import handlers
from kopilka.mechanics.coalition.export import statement_csv, statement_pdf
from kopilka.operators import keys
from kopilka.platform.http.common import Body, Database, caller, created, now, run
from kopilka.platform.http.schemas import AMOUNT, CODE, body, problems, text

PARTNER = "/v1/programs/{program}/partners/{partner}"
READERS = ("admin", "analyst", "partner")
router = APIRouter(tags=["coalition"])

DAY = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
       "description": "a local day, YYYY-MM-DD"}  # fmt: skip
PERIOD = {"type": "object", "required": ["until"], "additionalProperties": False,
          "properties": {"from": DAY, "until": DAY}}  # fmt: skip
BLOCK = {"type": "object", "required": ["points", "price", "reference"],
         "additionalProperties": False,
         "properties": {"points": {**AMOUNT, "description": "more than 0"},
                        "price": {**AMOUNT, "description": "money, not negative"},
                        "reference": text(200, "the partner's payment, unique")}}  # fmt: skip
CORRECTION = {"type": "object", "required": ["amount", "note"], "additionalProperties": False,
              "properties": {"amount": {**AMOUNT, "description": "+ the partner owes, − "
                                        "owed to it; not 0"}, "note": text()}}  # fmt: skip
EXIT = {"type": "object", "required": ["to"], "additionalProperties": False,
        "properties": {"to": {**CODE, "description": "program, or a partner that redeems"},
                       "note": text()}}  # fmt: skip
MARCH = {"from": "2026-03-01", "until": "2026-03-31"}

STATEMENT_EXAMPLE = {
    "id": "7", "partner": "books", "status": "closed", "from": "2026-11-01",
    "until": "2026-11-30", "currency": "RUB", "opening": "0.00",
    "lines": [{"what": "points issued, funded by the partner", "amount": "8000.00"},
              {"what": "points redeemed, reimbursed", "amount": "-3500.00"}],
    "net": "4500.00", "closing": "4500.00",
    "points": {"issued": "10000.00", "redeemed": "5000.00",
               "earned_here_spent_elsewhere": "1200.00",
               "earned_elsewhere_spent_here": "800.00"},
    "closed_at": "2026-12-01T09:00:00+00:00", "closed_by": "key:1",
}  # fmt: skip


def own_partner(who: keys.Principal, partner: str) -> None:
    """A partner's key reads its own partner only."""
    if who.role != "partner":
        return
    if who.partner is None:
        raise Forbidden("only a key bound to a partner (keys create --partner) reads a partner")
    if who.partner != partner:
        raise NotFound(f"partner {partner!r} does not exist")


def reader_of(program: str, partner: str, who: keys.Principal) -> keys.Principal:
    del program
    own_partner(who, partner)
    return who


async def partner_reader(
    program: str, partner: str, who: Annotated[keys.Principal, Depends(caller(*READERS))]
) -> keys.Principal:
    return reader_of(program, partner, who)


Reader = Annotated[keys.Principal, Depends(partner_reader)]
Admin = Annotated[keys.Principal, Depends(caller("admin"))]


@router.get(PARTNER, summary="A partner's terms and position",
            openapi_extra=problems())  # fmt: skip
async def partner_position(program: str, partner: str, engine: Database, _who: Reader) -> Any:
    """The partner's terms; its outstanding points (issued there and not yet spent,
    burnt or moved) and the reserve held against them; its prepaid blocks with what each
    has left; its last closed statement."""
    return await run(engine, handlers.position, engine, program, partner)


@router.get(PARTNER + "/purchases", summary="The purchases made at a partner, newest first",
            openapi_extra=problems())  # fmt: skip
async def partner_purchases(
    program: str, partner: str, engine: Database, _who: Reader,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """What a partner sees of its customers' activity: each purchase at its locations
    (receipt, location, member id, status, money and points); pass `next` as `before`."""
    return await run(engine, handlers.partner_purchases, engine, program, partner,
                     before=before, limit=limit)  # fmt: skip


@router.post(PARTNER + "/blocks", status_code=201, summary="A prepaid partner buys a block",
             openapi_extra=body(BLOCK, {"points": "10000", "price": "9500.00",
                                        "reference": "PAY-7"}, replays=True))  # fmt: skip
async def buy_block(program: str, partner: str, body: Body, engine: Database, who: Admin) -> Any:
    """`{points, price, reference}`: a block of points the partner paid `price` for
    (its statement charges it); its purchases' earning draws on the oldest block first.
    The same `reference` again answers the first result (200)."""
    answer, is_new = await run(engine, handlers.buy_block, engine, program, partner, body,
                               actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return created(answer, is_new)


@router.get(PARTNER + "/statements", summary="A partner's closed statements, newest first",
            openapi_extra=problems())  # fmt: skip
async def statements(program: str, partner: str, engine: Database, _who: Reader) -> Any:
    return {"items": await run(engine, handlers.list_statements, engine, program, partner)}


@router.post(PARTNER + "/statements/draft", summary="What a period's statement would say",
             openapi_extra=body(PERIOD, MARCH, answer=(200, {**STATEMENT_EXAMPLE, "id": None,
                                                             "status": "draft"})))  # fmt: skip
async def draft(program: str, partner: str, body: Body, engine: Database, _who: Reader) -> Any:
    """`{from?, until}` (local days, inclusive): the statement as it stands, not kept.
    `from` is needed for the partner's first statement only: each next one begins the
    day after the last."""
    return await run(engine, handlers.draft_statement, engine, program, partner, body,
                     now=now())  # fmt: skip


@router.post(PARTNER + "/statements", status_code=201, summary="Close a period's statement",
             openapi_extra=body(PERIOD, MARCH, answer=(201, STATEMENT_EXAMPLE)))  # fmt: skip
async def close(program: str, partner: str, body: Body, engine: Database, who: Admin) -> Any:
    """`{from?, until}`: the statement of a period that is over, written once and never
    changed (`409` for a period not yet over, or one already closed); corrections
    recorded since the last statement become its lines."""
    answer = await run(engine, handlers.close_statement, engine, program, partner, body,
                       actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return JSONResponse(answer, status_code=201)


@router.post("/v1/programs/{program}/statements", status_code=201,
             summary="Close every partner's statement for a period",
             openapi_extra=body(PERIOD, MARCH))  # fmt: skip
async def close_all(program: str, body: Body, engine: Database, who: Admin) -> Any:
    """`{from?, until}`: every partner with terms gets its statement for the period, in
    one transaction, the ledger read once for them all (each continues from its own last
    statement; `from` is the first day of a partner's first). `{items}` as closed."""
    answer = await run(engine, handlers.close_period, engine, program, body,
                       actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return JSONResponse(answer, status_code=201)


@router.get(PARTNER + "/statements/{statement}", summary="One closed statement",
            openapi_extra=problems(answer=(200, STATEMENT_EXAMPLE)))  # fmt: skip
async def statement(
    program: str, partner: str, statement: str, engine: Database, _who: Reader
) -> Any:
    return await run(engine, handlers.read_statement, engine, program, partner, statement)


async def _exported(
    engine: Any, program: str, partner: str, statement: str
) -> tuple[dict[str, Any], str]:
    return await run(engine, handlers.statement_to_export, engine, program, partner, statement)


@router.get(PARTNER + "/statements/{statement}/csv", summary="A statement as CSV",
            response_class=Response, openapi_extra=problems())  # fmt: skip
async def statement_as_csv(
    program: str, partner: str, statement: str, engine: Database, _who: Reader
) -> Response:
    """The statement for a spreadsheet: its facts, then each line with what the partner
    owes and what is owed to it in separate unsigned columns (no cell a formula)."""
    found, name = await _exported(engine, program, partner, statement)
    return Response(statement_csv(found, name), media_type="text/csv; charset=utf-8",
                    headers=_attachment(found, "csv"))  # fmt: skip


@router.get(PARTNER + "/statements/{statement}/pdf", summary="A statement as PDF",
            response_class=Response, openapi_extra=problems())  # fmt: skip
async def statement_as_pdf(
    program: str, partner: str, statement: str, engine: Database, _who: Reader
) -> Response:
    found, name = await _exported(engine, program, partner, statement)
    pdf = await run(engine, statement_pdf, found, name)
    return Response(pdf, media_type="application/pdf", headers=_attachment(found, "pdf"))


def _attachment(found: dict[str, Any], suffix: str) -> dict[str, str]:
    name = f"statement-{found['partner']}-{found['from']}-{found['until']}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.post(PARTNER + "/corrections", status_code=201,
             summary="An amount for the partner's next statement",
             openapi_extra=body(CORRECTION, {"amount": "-250.00", "note": "disputed"}))  # fmt: skip
async def correction(program: str, partner: str, body: Body, engine: Database, who: Admin) -> Any:
    """`{amount, note}`: + the partner owes, − owed to it. A closed statement never
    changes: the correction is a line of the next one."""
    answer = await run(engine, handlers.add_correction, engine, program, partner, body,
                       actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return JSONResponse(answer, status_code=201)


@router.post(PARTNER + "/exit", status_code=201,
             openapi_extra=body(EXIT, {"to": "cafe", "note": "shoes left the coalition"}),
             summary="Move a leaving partner's outstanding points")  # fmt: skip
async def exit_partner(program: str, partner: str, body: Body, engine: Database, who: Admin) -> Any:
    """`{to: "program" | a partner, note?}`, once the partner's `earning_until` has
    passed: its outstanding points move to the taker, recorded with their value at its
    reimbursement rate (a line of both their next statements). Members keep every point."""
    answer = await run(engine, handlers.move_liability, engine, program, partner, body,
                       actor=f"key:{who.key_id}", now=now())  # fmt: skip
    return JSONResponse(answer, status_code=201)
