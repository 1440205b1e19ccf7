"""Access keys in the console (issue 8): `router`, which
`kopilka.platform.console.routes.register` mounts after the console's own pages; the
engine is the app's (`request.app.state.engine`). The coupon campaigns' pages are the
coupons mechanic's own (`kopilka.mechanics.coupons.pages`).

    /console/{program}/keys                           access keys (no text)      admin
    POST /console/{program}/keys                      create: shown once         admin
    POST /console/{program}/keys/{id}/revoke          revoke                     admin

A key's text is shown once, on the page that answers its creation, and never again; the
list shows its first characters only. Every change is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from kopilka.checkout.mechanic import mechanics
from kopilka.kernel.errors import InvalidInput, KopilkaError
from kopilka.operators import handlers as operators
from kopilka.operators import keys
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import EVERYONE, engine_of, form_of, operator_of, serve
from kopilka.platform.requests import now

ADMIN = ("admin",)
BASE = "/console/{program}/keys"

router = APIRouter()


def _problems(error: KopilkaError) -> list[str]:
    return [str(p) for p in getattr(error, "problems", ())] or [error.detail]


# — access keys —


@router.get(BASE, include_in_schema=False)
async def key_list(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, ADMIN)
    return await _keys_page(request, engine, operator)


@router.post(BASE, include_in_schema=False)
async def create(request: Request, program: str) -> Response:
    engine = engine_of(request)
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


@router.post(BASE + "/{key}/revoke", include_in_schema=False)
async def revoke(request: Request, program: str, key: str) -> Response:
    engine = engine_of(request)
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


@router.get("/console/{program}/engagement", include_in_schema=False)
async def engagement(request: Request, program: str) -> Response:
    """The engagement mechanics' pages (stamp cards, challenges, bounce-back coupons,
    points for actions, referrals), each with its figures, listed in one place."""
    engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    links = [mechanic.console_link for mechanic in mechanics() if mechanic.console_link]
    return render(request, "engagement.html", operator=operator, program=program, links=links)
