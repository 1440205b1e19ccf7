"""Coupons, discounts and access keys in the console (issue 8), mounted by
`kopilka.web.routes.register`.

    /console/{program}/coupons                        campaigns, discounts       every role
    /console/{program}/coupons/{campaign}             a campaign, its batches    every role
    POST /console/{program}/coupons/{campaign}/batches  generate codes           admin, marketer
    /console/{program}/coupons/{campaign}/codes.csv   export the codes           admin
    /console/{program}/keys                           access keys (no text)      admin
    POST /console/{program}/keys                      create: shown once         admin
    POST /console/{program}/keys/{id}/revoke          revoke                     admin

A code is a bearer secret: only an admin exports them, the export is audited and not
cached. A key's text is shown once, on the page that answers its creation, and never
again; the list shows its first characters only. Every change is audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Engine

from kopilka.api.common import now, run
from kopilka.domain.errors import Conflict, InvalidInput, KopilkaError
from kopilka.services import coupons, discounts, keys, operators
from kopilka.services.operators import Operator
from kopilka.web.pages import redirect, render
from kopilka.web.routes import EVERYONE, form_of, operator_of, serve
from kopilka.web.rules_pages import discount_rows

GENERATORS = ("admin", "marketer")
ADMIN = ("admin",)
EXPORT_PAGE = 10_000  # codes read per query while the CSV streams


def register(app: FastAPI, engine: Engine) -> None:
    _coupons(app, engine)
    _keys(app, engine)


def _problems(error: KopilkaError) -> list[str]:
    return [str(p) for p in getattr(error, "problems", ())] or [error.detail]


# — coupons and discounts —


def _coupons(app: FastAPI, engine: Engine) -> None:
    base = "/console/{program}/coupons"

    @app.get(base, include_in_schema=False)
    async def campaigns(request: Request, program: str) -> Response:
        operator = await operator_of(request, engine, program, EVERYONE)
        listed = await serve(engine, coupons.list_campaigns, engine, program, now=now())
        offered = await serve(engine, discounts.list_discounts, engine, program)
        return render(request, "coupons.html", operator=operator, program=program,
                      campaigns=listed["items"],
                      discounts=discount_rows({"discounts": offered["items"]}))  # fmt: skip

    @app.get(base + "/{campaign}", include_in_schema=False)
    async def campaign(request: Request, program: str, campaign: str) -> Response:
        operator = await operator_of(request, engine, program, EVERYONE)
        return await _campaign_page(request, engine, operator, campaign)

    @app.post(base + "/{campaign}/batches", include_in_schema=False)
    async def batch(request: Request, program: str, campaign: str) -> Response:
        operator = await operator_of(request, engine, program, GENERATORS)
        fields = await form_of(request)
        count = fields.get("count", "").strip()
        try:
            made = await serve(engine, operators.generate_batch, engine, operator, campaign,
                               count, now())  # fmt: skip
        except InvalidInput as error:
            return await _campaign_page(request, engine, operator, campaign, 422,
                                        problems=_problems(error), count=count)  # fmt: skip
        except Conflict as error:  # a campaign with one public code
            return await _campaign_page(request, engine, operator, campaign, 409,
                                        problems=_problems(error), count=count)  # fmt: skip
        return redirect(request, f"/console/{program}/coupons/{campaign}?made={made['count']}")

    @app.get(base + "/{campaign}/codes.csv", include_in_schema=False)
    async def export(request: Request, program: str, campaign: str) -> Response:
        operator = await operator_of(request, engine, program, ADMIN)
        first = await serve(engine, coupons.code_page, engine, program, campaign,
                            limit=EXPORT_PAGE)  # fmt: skip
        await run(engine, operators.note_export, engine, operator, campaign, now())
        return StreamingResponse(
            _csv_lines(engine, program, campaign, first), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{campaign}-codes.csv"',
                     "Cache-Control": "no-store"},
        )  # fmt: skip


async def _csv_lines(
    engine: Engine, program: str, campaign: str, page: dict[str, Any]
) -> AsyncIterator[str]:
    """The campaign's codes as CSV, a page of codes at a time (a batch may be a million)."""
    yield coupons.csv_text(page["items"], header=True)
    while page["next"] is not None:
        page = await run(engine, coupons.code_page, engine, program, campaign,
                         after=int(page["next"]), limit=EXPORT_PAGE)  # fmt: skip
        yield coupons.csv_text(page["items"], header=False)


async def _campaign_page(
    request: Request, engine: Engine, operator: Operator, campaign: str, status: int = 200,
    **form: Any,
) -> Response:  # fmt: skip
    program = operator.program
    found = await serve(engine, coupons.read_campaign_of, engine, program, campaign, now=now())
    batches = await serve(engine, coupons.list_batches, engine, program, campaign)
    facts = await serve(engine, operators.program_facts, engine, program)
    made = request.query_params.get("made", "")
    return render(request, "campaign.html", status, operator=operator, program=program,
                  campaign=found, batches=batches["items"], facts=facts,
                  can_generate=operator.role in GENERATORS and found["kind"] == "unique",
                  can_export=operator.role in ADMIN and found["kind"] == "unique",
                  made=made if made.isdigit() else "", problems=form.get("problems", []),
                  count=form.get("count", ""))  # fmt: skip


# — access keys —


def _keys(app: FastAPI, engine: Engine) -> None:
    base = "/console/{program}/keys"

    @app.get(base, include_in_schema=False)
    async def key_list(request: Request, program: str) -> Response:
        operator = await operator_of(request, engine, program, ADMIN)
        return await _keys_page(request, engine, operator)

    @app.post(base, include_in_schema=False)
    async def create(request: Request, program: str) -> Response:
        operator = await operator_of(request, engine, program, ADMIN)
        fields = await form_of(request)
        role = fields.get("role", "")
        location = fields.get("location", "").strip() or None
        label = fields.get("label", "").strip() or None
        try:
            key, made = await serve(engine, operators.create_key, engine, operator, role,
                                    location, label, now())  # fmt: skip
        except InvalidInput as error:
            return await _keys_page(request, engine, operator, 422,
                                    problems=_problems(error), role=role,
                                    location=location or "", label=label or "")  # fmt: skip
        answer = await _keys_page(request, engine, operator, 201, new_key=key, made=made)
        answer.headers["Cache-Control"] = "no-store"  # the key's only showing
        return answer

    @app.post(base + "/{key}/revoke", include_in_schema=False)
    async def revoke(request: Request, program: str, key: str) -> Response:
        operator = await operator_of(request, engine, program, ADMIN)
        await form_of(request)
        revoked = await serve(engine, operators.revoke_key, engine, operator, key, now())
        return redirect(request, f"/console/{program}/keys?revoked={revoked['id']}")


async def _keys_page(
    request: Request, engine: Engine, operator: Operator, status: int = 200, **form: Any
) -> Response:
    program = operator.program
    listed = await serve(engine, keys.list_keys, engine, program)
    facts = await serve(engine, operators.program_facts, engine, program)
    revoked = request.query_params.get("revoked", "")
    return render(request, "keys.html", status, operator=operator, program=program,
                  keys=listed, roles=keys.ROLES, facts=facts,
                  revoked=revoked if revoked.isdigit() else "",
                  new_key=form.get("new_key"), made=form.get("made"),
                  problems=form.get("problems", []), role=form.get("role", ""),
                  location=form.get("location", ""), label=form.get("label", ""))  # fmt: skip
