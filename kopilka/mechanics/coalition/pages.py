"""The coalition's console pages, the mechanic's `pages` (mounted by the console, their
templates in this package's `templates/`):

    /console/{program}/partners                      every partner, its position    admin, analyst
    /console/{program}/partners/{partner}            its terms, position, statements,
                                                     its customers' latest purchases admin, analyst,
                                                                                     its partner
    /console/{program}/partners/{partner}/statements/{id}/csv | /pdf  the files     the same

A partner operator (`kopilka operators create --role partner --partner P`) lands on its
own partner's page and sees nothing else: another partner's page is a 404 to it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.mechanics.coalition import handlers
from kopilka.mechanics.coalition.export import statement_csv, statement_pdf
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import PageError, render
from kopilka.platform.console.routes import NOT_FOUND, engine_of, operator_of, serve

OVERSEERS = ("admin", "analyst")
READERS = (*OVERSEERS, "partner")
BASE = "/console/{program}/partners"
PURCHASES_SHOWN = 20

router = APIRouter()


@router.get(BASE, include_in_schema=False)
async def partners_page(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, OVERSEERS)
    partners = await serve(engine, handlers.partners_overview, engine, program)
    return render(request, "partners.html", operator=operator, program=program,
                  partners=partners)  # fmt: skip


async def _reader(request: Request, program: str, partner: str) -> Operator:
    operator = await operator_of(request, engine_of(request), program, READERS)
    if operator.partner is not None and operator.partner != partner:
        raise PageError(404, NOT_FOUND)
    return operator


@router.get(BASE + "/{partner}", include_in_schema=False)
async def partner_page(request: Request, program: str, partner: str) -> Response:
    engine = engine_of(request)
    operator = await _reader(request, program, partner)
    position = await serve(engine, handlers.position, engine, program, partner)
    statements = await serve(engine, handlers.list_statements, engine, program, partner)
    bought = await serve(engine, handlers.partner_purchases, engine, program, partner,
                         limit=PURCHASES_SHOWN)  # fmt: skip
    return render(request, "partner.html", operator=operator, program=program,
                  partner=partner, position=position, statements=statements,
                  purchases=bought["items"])  # fmt: skip


@router.get(BASE + "/{partner}/statements/{statement}/{kind}", include_in_schema=False)
async def statement_file(
    request: Request, program: str, partner: str, statement: str, kind: str
) -> Response:
    engine = engine_of(request)
    await _reader(request, program, partner)
    if kind not in ("csv", "pdf"):
        raise PageError(404, NOT_FOUND)
    found, name = await serve(engine, handlers.statement_to_export, engine, program, partner,
                              statement)  # fmt: skip
    filename = f"statement-{partner}-{found['from']}-{found['until']}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind == "csv":
        return Response(statement_csv(found, name), media_type="text/csv; charset=utf-8",
                        headers=headers)  # fmt: skip
    pdf = await serve(engine, statement_pdf, found, name)
    return Response(pdf, media_type="application/pdf", headers=headers)
