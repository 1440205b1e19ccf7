"""The operator console (issue 8): pages under `/console`, this module's `router`, which
`register` mounts with the rest of the console.

    /console/login                          sign in (program, email, password)
    /console/logout                         POST: sign out
    /console/{program}/                     dashboard                 every role
    /console/{program}/members?q=           search                    admin, support, analyst
    /console/{program}/members/{id}         profile, history          admin, support, analyst
    /console/{program}/members/{id}/adjustments  POST                 admin, support
    /console/{program}/members/{id}/status  POST: block / unblock     admin, support
    /console/{program}/members/{id}/resend  POST: a coupon again      admin, support
    /console/{program}/purchases/{id}       a purchase explained      admin, support, analyst
    /console/{program}/audit                the audit log             admin, support

The keys pages are `kopilka.platform.console.program_pages`' `router`, and each mechanic's
own pages (the coupon campaigns': `kopilka.mechanics.coupons.pages`) its `pages` router;
`register` mounts them too. Their endpoints take the engine from the app's state
(`request.app.state.engine`, which `create_app` sets before it mounts the console).

A program other than the operator's is answered 404, as the API answers a key of
another program. Every POST passes the CSRF check of `kopilka.operators.sessions`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from kopilka.checkout import purchases
from kopilka.checkout.mechanic import mechanics
from kopilka.kernel.errors import (
    Conflict,
    InsufficientPoints,
    InvalidInput,
    KopilkaError,
    NotFound,
)
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members import balances
from kopilka.members import handlers as members
from kopilka.members import links as member_links
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator
from kopilka.operators.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Sessions,
    is_same_origin,
    is_valid_csrf,
)
from kopilka.platform.console import charts
from kopilka.platform.console.pages import (
    STATIC,
    STATIC_URL,
    PageError,
    Redirect,
    redirect,
    refuse_unstorable,
    render,
    visit_of,
)
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.platform.problems import status_of
from kopilka.platform.requests import now, run
from kopilka.programs import handlers as programs

T = TypeVar("T")
READERS = ("admin", "support", "analyst")
SUPPORT = ("admin", "support")
EVERYONE = operators.PROGRAM_ROLES  # a partner operator sees its partner's page only
MAX_QUERY = 200  # a search longer than this is no card, phone, email or name
MAX_FORM_TEXT = 1000
NOT_FOUND = "There is no such page, or it is not this program's."
TOO_LONG = "A field is longer than 1,000 characters: nothing was saved. Go back and shorten it."
AUDIT_PAGE = 100
HISTORY_PAGE = 50
LINKS_SHOWN = 20  # a member's newest personal links on their profile
BASE = "/console/{program}"


_POINTS = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?", re.ASCII)

router = APIRouter()


def register(
    app: FastAPI, *, secret: str | None = None, failed_logins: FailedAuthLimiter | None = None,
) -> None:  # fmt: skip
    """Mount the console on `app`: its sessions, its failed-login limiter, its static files,
    its error pages, then its pages — this module's `router`, the keys pages' and each
    mechanic's `pages`. The pages serve the app's engine (`app.state.engine`, which
    `create_app` sets). `secret` signs the session cookies (default: `KOPILKA_SECRET`,
    else a random one: sessions then end when the process does, and several workers need
    the variable set alike)."""
    app.state.console_sessions = Sessions(
        secret or os.environ.get("KOPILKA_SECRET") or secrets.token_urlsafe(32)
    )
    # per client address and per account: 10 wrong passwords in 5 minutes, then a pause
    app.state.console_failed_logins = failed_logins or FailedAuthLimiter(10, 300.0)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(PageError, _error_page)  # type: ignore[arg-type]
    app.add_exception_handler(Redirect, _redirect)  # type: ignore[arg-type]
    from kopilka.platform.console import program_pages  # it uses this module's helpers

    for pages in (router, program_pages.router):
        _add_routes(app, pages)
    for mechanic in mechanics():  # each mechanic's own console pages
        if mechanic.pages is not None:
            app.include_router(mechanic.pages)


def _add_routes(app: FastAPI, pages: APIRouter) -> None:
    """Add the console's `pages` to `app` as the app's own routes, in their order (as
    `create_app` adds the API's routers and the other pages: `app.routes` lists each)."""
    for route in pages.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: the console's routers hold pages (API routes) only")
        app.router.add_api_route(
            route.path, route.endpoint, methods=sorted(route.methods or ()),
            status_code=route.status_code, dependencies=route.dependencies,
            include_in_schema=route.include_in_schema, response_class=route.response_class,
            name=route.name,
        )  # fmt: skip


async def _error_page(request: Request, error: PageError) -> Response:
    return render(request, "error.html", error.status, message=error.message,
                  detail=error.detail)  # fmt: skip


async def _redirect(request: Request, target: Redirect) -> Response:
    return redirect(request, target.location)


# — who is asking —


def engine_of(request: Request) -> Engine:
    """The engine the app serves (`create_app` keeps it in the app's state)."""
    engine: Engine = request.app.state.engine
    return engine


async def operator_of(request: Request, engine: Engine, program: str, roles: tuple[str, ...]
                      ) -> Operator:  # fmt: skip
    """The signed-in operator, when the path's program is theirs and the role fits;
    otherwise a redirect to the sign-in page, a 404 or a 403."""
    token = visit_of(request).session.token
    operator = (
        await run(engine, operators.session_operator, engine, token, now())
        if token is not None else None
    )  # fmt: skip
    if operator is None:
        raise Redirect(f"/console/login?program={program}")
    if operator.program != program:
        raise PageError(404, NOT_FOUND)
    if operator.role not in roles:
        raise PageError(403, "Your role may not open this page.")
    return operator


async def form_of(request: Request, max_fields: int = 20) -> dict[str, str]:
    """The POSTed form, after the origin and CSRF checks; text fields of at most
    MAX_FORM_TEXT characters (a longer one refuses the form: cutting a reason short would
    store what nobody typed), at most `max_fields` of them (more is Starlette's 400)."""
    if not is_same_origin(request):
        raise PageError(403, "The request came from another site.")
    form = await request.form(max_files=0, max_fields=max_fields)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    sent = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not is_valid_csrf(visit_of(request).session, sent):
        raise PageError(403, "The form has expired: reload the page and try again.")
    if any(len(value) > MAX_FORM_TEXT for value in fields.values()):
        raise PageError(422, TOO_LONG)
    refuse_unstorable(fields.items())
    return fields


async def serve(engine: Engine, service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A service's answer; its NotFound becomes the 404 page."""
    try:
        return await run(engine, service, *args, **kwargs)
    except NotFound as error:
        raise PageError.of(error, NOT_FOUND) from None


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# — signing in and out —


@router.get("/console/login", include_in_schema=False)
async def login_page(request: Request, program: str = "") -> Response:
    engine = engine_of(request)
    if not program:  # a server of one program (the demo's, a café's) fills it in
        sole: str | None = await run(engine, programs.sole_program, engine)
        program = sole or ""
    return render(request, "login.html", program=program[:MAX_QUERY], email="",
                  failed=False)  # fmt: skip


@router.post("/console/login", include_in_schema=False)
async def login(request: Request) -> Response:
    engine = engine_of(request)
    fields = await form_of(request)
    program, email = fields.get("program", "").strip(), fields.get("email", "").strip()
    limiter: FailedAuthLimiter = request.app.state.console_failed_logins
    attempts = (client_of(request), f"{program}:{email.lower()}")
    if any(limiter.retry_after(who) for who in attempts):
        raise PageError(429, "Too many attempts: wait a few minutes and try again.")
    operator = await run(engine, operators.authenticate, engine, program, email,
                         fields.get("password", ""), now())  # fmt: skip
    if operator is None:
        for who in attempts:
            limiter.failed(who)
        return render(request, "login.html", 401, program=program, email=email,
                      failed=True)  # fmt: skip
    token = await run(engine, operators.start_session, engine, operator, now())
    visit = visit_of(request)
    visit.replace(visit.session.signed_in(token))
    return redirect(request, home_of(operator))


def home_of(operator: Operator) -> str:
    """Where an operator lands: the dashboard, or a partner operator's partner page."""
    if operator.partner is not None:
        return f"/console/{operator.program}/partners/{operator.partner}"
    return f"/console/{operator.program}/"


@router.post("/console/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    engine = engine_of(request)
    await form_of(request)
    visit = visit_of(request)
    if visit.session.token is not None:
        await run(engine, operators.end_session, engine, visit.session.token, now())
    visit.replace(visit.session.signed_out())
    return redirect(request, "/console/login")


# — pages —


@router.get("/console/{program}/", include_in_schema=False)
async def dashboard(request: Request, program: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    board = await serve(engine, operators.dashboard, engine, program, now())
    chart = charts.points_by_day(board.days, board.program.points_digits)
    return render(request, "dashboard.html", operator=operator, program=program,
                  board=board, chart=chart)  # fmt: skip


@router.get(BASE + "/members", include_in_schema=False)
async def search(request: Request, program: str, q: str = "") -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, READERS)
    if len(q) > MAX_QUERY:
        return render(request, "members.html", 422, operator=operator, program=program,
                      q=q[:MAX_QUERY], found=[], too_long=MAX_QUERY)  # fmt: skip
    found = await serve(engine, operators.search_members, engine, program, q)
    return render(request, "members.html", operator=operator, program=program, q=q,
                  found=found)  # fmt: skip


@router.get(BASE + "/members/{member}", include_in_schema=False)
async def profile(request: Request, program: str, member: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, READERS)
    return await _profile_page(request, engine, operator, member)


@router.post(BASE + "/members/{member}/adjustments", include_in_schema=False)
async def adjust(request: Request, program: str, member: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    fields = await form_of(request)
    points, reason = fields.get("points", "").strip(), fields.get("reason", "").strip()
    if points and not _POINTS.fullmatch(points):  # no 1_000, 1e3 or other scripts' digits
        return await _profile_page(request, engine, operator, member, status=422,
                                   problems=[f"points: {points!r} is not a number of points "
                                             "(digits, a sign, a decimal point or comma)"],
                                   points=points, reason=reason)  # fmt: skip
    try:
        await serve(engine, operators.adjust_points, engine, operator, member,
                    points.replace(",", "."), reason, now())  # fmt: skip
    except (InvalidInput, InsufficientPoints) as error:
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        return await _profile_page(request, engine, operator, member, status=status_of(error),
                                   problems=problems, points=points, reason=reason)  # fmt: skip
    return redirect(request, f"/console/{program}/members/{member}?adjusted=1")


@router.post(BASE + "/members/{member}/status", include_in_schema=False)
async def status(request: Request, program: str, member: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    fields = await form_of(request)
    wanted = fields.get("status", "")
    if wanted not in ("active", "blocked"):
        raise PageError(422, "The status must be active or blocked.")
    try:
        changed = await serve(engine, operators.change_member_status, engine, operator,
                              member, wanted, now())  # fmt: skip
    except KopilkaError as error:  # an erased member
        return await _profile_page(request, engine, operator, member, status=409,
                                   problems=[error.detail])  # fmt: skip
    return redirect(request, f"/console/{program}/members/{changed['id']}?status={wanted}")


@router.post(BASE + "/members/{member}/resend", include_in_schema=False)
async def resend(request: Request, program: str, member: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    fields = await form_of(request)
    code, channel = fields.get("code", "").strip(), fields.get("channel", "")
    try:
        await serve(engine, operators.resend_coupon, engine, operator, member, code,
                    channel, now())  # fmt: skip
    except (InvalidInput, Conflict) as error:  # a blocked member, a used coupon …
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        return await _profile_page(request, engine, operator, member, status=409,
                                   problems=problems)  # fmt: skip
    return redirect(request, f"/console/{program}/members/{member}?resent={channel}")


@router.post(BASE + "/members/{member}/links/{link}/revoke", include_in_schema=False)
async def revoke_link(request: Request, program: str, member: str, link: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    await form_of(request)
    await serve(engine, operators.revoke_member_link, engine, operator, member, link, now())
    return redirect(request, f"/console/{program}/members/{member}?links=revoked#links")


@router.post(BASE + "/members/{member}/links/revoke", include_in_schema=False)
async def revoke_links(request: Request, program: str, member: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    await form_of(request)
    await serve(engine, operators.revoke_member_links, engine, operator, member, now())
    return redirect(request, f"/console/{program}/members/{member}?links=revoked#links")


@router.get(BASE + "/purchases/{purchase}", include_in_schema=False)
async def purchase(request: Request, program: str, purchase: str) -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, READERS)
    answer = await serve(engine, purchases.read_purchase, engine, program, purchase)
    facts = await serve(engine, operators.program_facts, engine, program)
    # htmx asks for the fragment to put into the profile; a plain link gets the page
    template = "explain.html" if request.headers.get("hx-request") else "purchase.html"
    return render(request, template, operator=operator, program=program,
                  purchase=answer, facts=facts)  # fmt: skip


async def _profile_page(
    request: Request, engine: Engine, operator: Operator, member: str, status: int = 200,
    **form: Any,
) -> Response:  # fmt: skip
    program = operator.program
    try:
        profile = await serve(engine, members.read_member, engine, program, member, now=now())
        balance = await serve(engine, balances.balance, engine, program, member)
        moves = await serve(engine, balances.history, engine, program, member,
                            before=cursor_of(request), limit=HISTORY_PAGE)  # fmt: skip
        held = await serve(engine, coupons.member_coupons, engine, program, member, now=now())
        links = await serve(engine, member_links.list_links, engine, program, member,
                            limit=LINKS_SHOWN)  # fmt: skip
    except KopilkaError as error:  # a reference no member has, in any spelling
        raise PageError(404, NOT_FOUND, error.detail) from None
    facts = await serve(engine, operators.program_facts, engine, program)
    return render(request, "member.html", status, operator=operator, program=program,
                  member=profile, balance=balance, moves=moves["items"], facts=facts,
                  older=moves["next"], paged=cursor_of(request) is not None,
                  coupons=held["items"], channels=coupons.CHANNELS,
                  links=[_link_row(link, now()) for link in links["items"]],
                  links_revoked=request.query_params.get("links") == "revoked",
                  can_adjust=operator.role in SUPPORT,
                  adjusted=request.query_params.get("adjusted") == "1",
                  resent=_known(request.query_params.get("resent"), coupons.CHANNELS),
                  changed_status=request.query_params.get("status", ""),
                  problems=form.get("problems", []), points=form.get("points", ""),
                  reason=form.get("reason", ""))  # fmt: skip


@router.get(BASE + "/audit", include_in_schema=False)
async def audit(request: Request, program: str, target: str = "") -> Response:
    engine = engine_of(request)
    operator = await operator_of(request, engine, program, SUPPORT)
    facts = await serve(engine, operators.program_facts, engine, program)
    before = cursor_of(request)
    entries = await serve(engine, operators.audit_entries, engine, program, before=before,
                          limit=AUDIT_PAGE + 1, target=target[:MAX_QUERY] or None)  # fmt: skip
    older = entries[AUDIT_PAGE - 1]["id"] if len(entries) > AUDIT_PAGE else None
    return render(request, "audit.html", operator=operator, program=program,
                  entries=entries[:AUDIT_PAGE], facts=facts, older=older,
                  paged=before is not None, target=target[:MAX_QUERY])  # fmt: skip


def _link_row(link: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A personal link as the profile lists it, with its state: active, expired, revoked."""
    expires = datetime.fromisoformat(link["expires_at"]) if link["expires_at"] else None
    state = ("revoked" if link["revoked_at"] else
             "expired" if expires is not None and expires <= at else "active")  # fmt: skip
    return {**link, "created_at": datetime.fromisoformat(link["created_at"]),
            "expires_at": expires, "state": f"link.{state}"}  # fmt: skip


def _known(value: str | None, choices: tuple[str, ...]) -> str:
    """`value` when it is one of `choices` (a query parameter shown on a page), else ""."""
    return value if value in choices else ""


def cursor_of(request: Request) -> int | None:
    """A page's `before` cursor (an id: older than it); anything else is the first page."""
    before = request.query_params.get("before", "")
    return int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
