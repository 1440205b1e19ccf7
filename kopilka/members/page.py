"""The member page (issue 8): a member's balance, tier, history, coupons and card, reached
by a personal link — no password. Its routes are `router`: `create_app` adds them to the
app, and keeps the secret that signs the links (`link_secret`) as its `member_link_secret`;
the endpoints take the app's engine as a dependency (`Database`):

    GET    /m/{token}                                      the page (?lang=ru|en)
    POST   /v1/programs/{program}/members/{member}/link    a new personal link
           (body `{"days": 30, "label": "sms"}`, `{"days": null}` or none)
    GET    /v1/programs/{program}/members/{member}/links   the member's links (no tokens)
    DELETE /v1/programs/{program}/members/{member}/links/{link}   revoke one link
    POST   /v1/programs/{program}/members/{member}/links/revoke   revoke all of them

The links are made, kept and checked by `kopilka.members.links`; a token that
is not ours (or whose link is gone) is answered by a friendly 404 page, an expired or a
revoked one by a 410 page. The card is drawn on the server as inline SVG — a QR code
(segno) and a Code 128 barcode (python-barcode), both holding the card number — so the
page needs no script and nothing from elsewhere.

Texts: the `member` catalog (`locale/<lang>/LC_MESSAGES/member.po`), compiled in memory
like the console's; a message it lacks is looked up in the console's `messages` catalog
(the reasons of movements, "points available"…), so the two never have to be edited
together. The page speaks `?lang=`, else the first of the browser's languages we have,
else the program's own (`program_language`: the language of the country its time zone
is in).

On a phone (issue 15): a figure's font shrinks with its length (`figure_size`), so a
balance of nine digits fits a 360 px screen; only the figures that are not zero are
shown (`figures_shown`); the points expiring are the nearest few days and one line
summing the rest (`expiring_soon`), not a row for each of a year's days.
"""

from __future__ import annotations

import gettext
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from typing import Annotated, Any

import barcode  # type: ignore[import-untyped]  # python-barcode ships no type hints
import segno
from babel.core import get_global
from babel.languages import get_official_languages
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import Engine

from kopilka.kernel.errors import NotFound
from kopilka.kernel.reading import MAX_TEXT
from kopilka.members import links as member_links
from kopilka.members.links import (
    DEFAULT_DAYS,
    LINKS_PAGE,
    MAX_DAYS,
    ExpiredLink,
    MemberView,
    RevokedLink,
    member_view,
    read_token,
    signed_target,
)
from kopilka.operators import keys
from kopilka.platform.console import i18n
from kopilka.platform.http.common import (
    ANY_ROLE,
    MEMBER_WRITERS,
    Database,
    IdempotencyKey,
    caller,
    created,
    json_body,
    now,
    run,
)
from kopilka.platform.http.schemas import LABEL_PATTERN, problems
from kopilka.programs.handlers import load_program

# Who may hand out a link — a bearer credential that reads the member's account for as
# long as it lives: the program's admin, its support team (a member asks for their page)
# and a partner's site (showing a signed-in member their page). Not a pos key: a till at
# one location has no business handing out lasting access to anybody's account. Whoever
# may make links may also revoke them; who may read the program's data (analysts too)
# may list them — a listing holds no token.
LINK_MAKERS = ("admin", "support", "partner")
LINK_READERS = (*LINK_MAKERS, "analyst")
assert set(LINK_MAKERS) <= set(MEMBER_WRITERS)
assert set(LINK_READERS) <= set(ANY_ROLE)
DOMAIN = "member"
# the token is a bearer credential in the address: no cache keeps the page, no referrer
# carries the address on, no search engine lists it
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
}
LINK_BODY = {
    "type": "object",
    "properties": {
        "days": {
            "type": ["integer", "null"], "minimum": 1, "maximum": MAX_DAYS,
            "description": f"how long the link works (default {DEFAULT_DAYS}); null: no end",
        },
        "label": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_TEXT,
                  "pattern": LABEL_PATTERN,
                  "description": "where the link goes (sms, email, a partner's site…)"},
    },
    "additionalProperties": False,
}  # fmt: skip
LINK_ID = "q8Zk2vN0bXo4TgJ1sW9yHA"
LINK_EXAMPLE = {"id": LINK_ID,
                "url": "https://loyalty.example/m/eyJsIjoicThaazJ2TjBiWG80VGdKMXNXOXlIQSJ9.x",
                "expires_at": "2027-03-10T09:00:00+00:00"}  # fmt: skip
LINK_RECORD = {"id": LINK_ID, "created_at": "2026-03-10T09:00:00+00:00",
               "expires_at": "2027-03-10T09:00:00+00:00", "revoked_at": None,
               "created_by": "key:2", "label": "sms"}  # fmt: skip
LINKS_EXAMPLE = {"items": [LINK_RECORD], "next": None}
REVOKED_EXAMPLE = {**LINK_RECORD, "revoked_at": "2026-04-01T12:00:00+00:00"}
REVOKED_ALL_EXAMPLE = {"member": "1", "revoked": 2, "revoked_at": "2026-04-01T12:00:00+00:00"}
LINK_OPENAPI = {
    "requestBody": {"required": False, "content": {"application/json": {
        "schema": LINK_BODY, "example": {"days": 30, "label": "sms"}}}},
    **problems(replays=True, answer=(201, LINK_EXAMPLE)),
}  # fmt: skip


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The `member` catalog of `language`, falling back on the console's catalog."""
    with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    own = gettext.GNUTranslations(compiled)
    own.add_fallback(i18n.translations(language))
    return own


def gettext_(message: str) -> str:
    return translations(i18n.current_language()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(i18n.current_language()).ngettext(singular, plural, n)


# — on a phone —

EXPIRING_SHOWN = 3  # the nearest days points expire on, listed; the rest summed on one line
# A figure's font shrinks so its text fits its box (the CSS: `calc(140cqi / var(--chars))`,
# a digit being at most .7 of the font's size); the classes step at these lengths
FIGURE_LENGTHS = (8, 10, 12, 14, 17, 20, 24, 28)
SECONDARY_FIGURES = ("pending", "held", "debt")  # shown only when not zero


def figure_size(text: str) -> str:
    """The class that sizes a figure's font for `text`: `chars-N`, N the first step of
    `FIGURE_LENGTHS` that holds it ("1,234,567.89", 12 characters: `chars-12`)."""
    steps = (length for length in FIGURE_LENGTHS if len(text) <= length)
    return f"chars-{next(steps, FIGURE_LENGTHS[-1])}"


def unbroken(text: str) -> str:
    """`text` with no-break spaces: a date ("8 марта 2028 г.") is never split over lines."""
    return text.replace(" ", "\u00a0")


def figures_shown(balance: dict[str, Any]) -> list[str]:
    """The balance's figures worth a box: what is available, always; what is pending,
    held or owed only when there is some — a row of 0.00s tells a member nothing."""
    secondary = (name for name in SECONDARY_FIGURES if _is_some(balance.get(name)))
    return ["available", *secondary]


def _is_some(value: object) -> bool:
    number = i18n.as_decimal(value)  # None for a figure the balance does not have
    return number is not None and number != 0


@dataclass(frozen=True)
class ExpiringSoon:
    """The points expiring, as the page lists them: the nearest days, then the rest."""

    nearest: list[dict[str, str]]  # {"date", "points"}, as `balances.balance` has them
    later_days: int  # how many days after those have points expiring
    later_points: Decimal  # how many points expire on them, all told
    last_day: str | None  # the last of those days (ISO), None if there are none


def expiring_soon(expiring: Sequence[dict[str, str]], shown: int = EXPIRING_SHOWN) -> ExpiringSoon:
    """The nearest `shown` days of `expiring` (a day each, as the balance lists them) and
    the sum of the rest: a year of points earned daily is four lines, not 365."""
    by_day = sorted(expiring, key=lambda item: item["date"])
    nearest, later = by_day[:shown], by_day[shown:]
    total = sum((Decimal(item["points"]) for item in later), Decimal(0))
    return ExpiringSoon(nearest, len(later), total, later[-1]["date"] if later else None)


def program_language(timezone: str) -> str:
    """The language a program speaks, as far as we know it: one of the official
    languages of the country its time zone is in (Europe/Moscow: Russian), if we have
    it; else the default. The program file has no language of its own."""
    territory = get_global("zone_territories").get(timezone)
    if territory is None:
        return i18n.DEFAULT_LANGUAGE
    # de jure official first; a country with none (the US) by its de facto one
    spoken = get_official_languages(territory) or get_official_languages(territory, de_facto=True)
    return next((code for code in spoken if code in i18n.LANGUAGES), i18n.DEFAULT_LANGUAGE)


def page_language(asked: str | None, accept_language: str, program: str) -> str:
    """`?lang=` (the switch) first, then the first of the browser's languages we have,
    then the program's language `program` — for a browser that asks for none of ours,
    or for nothing at all."""
    # `program` goes in as the browser's least wish (q=0.001, the least HTTP writes):
    # any language of ours the browser names outweighs it
    return i18n.choose_language(asked, None, f"{program};q=0.001, {accept_language}")


templates = i18n.environment(gettext_, ngettext_)
templates.filters.update(figure_size=figure_size, unbroken=unbroken)


# — the card, drawn —


def qr_svg(card: str) -> Markup:
    """The card number as a QR code (level M), dark on white with its quiet zone."""
    code = segno.make_qr(card, error="m")
    svg = code.svg_inline(scale=6, border=4, dark="#000", light="#fff", svgid="card-qr",
                          svgclass="qr", title=card)  # fmt: skip
    return Markup(svg)  # segno's own markup: the card is only in its escaped title


def barcode_svg(card: str, *, module: int = 3, height: int = 72, quiet: int = 10) -> Markup:
    """The card number as a Code 128 barcode: one rectangle per run of dark modules."""
    modules = barcode.get("code128", card).build()[0]
    bars: list[str] = []
    start = None
    for position, bit in enumerate(modules + "0"):
        if bit == "1" and start is None:
            start = position
        elif bit != "1" and start is not None:
            x, width = (quiet + start) * module, (position - start) * module
            bars.append(f'<rect x="{x}" y="0" width="{width}" height="{height}"/>')
            start = None
    total = (len(modules) + 2 * quiet) * module
    return Markup(  # numbers only, and the escaped card in the title
        f'<svg id="card-barcode" class="barcode" width="{total}" height="{height}" '
        f'viewBox="0 0 {total} {height}" role="img"><title>{escape(card)}</title>'
        f'<rect width="{total}" height="{height}" fill="#fff"/><g fill="#000">'
        f"{''.join(bars)}</g></svg>"
    )


# — the routes —

router = APIRouter()
LINKS = "/v1/programs/{program}/members/{member}"


def link_secret() -> str:
    """The secret that signs the links, kept by `create_app` as the app's
    `member_link_secret`: `KOPILKA_SECRET`, as the console's sessions; without it a random
    one, and links end when the process does."""
    return os.environ.get("KOPILKA_SECRET") or secrets.token_urlsafe(32)


@router.get("/m/{token}", include_in_schema=False)
async def member_page(request: Request, token: str, engine: Database) -> Response:
    secret = request.app.state.member_link_secret

    def language(timezone: str | None) -> str:
        program = program_language(timezone) if timezone else i18n.DEFAULT_LANGUAGE
        return page_language(request.query_params.get("lang"),
                             request.headers.get("accept-language", ""), program)  # fmt: skip

    try:
        target = await run(engine, read_token, engine, token, secret=secret, now=now())
        view = await run(engine, member_view, engine, target.program, target.member_id,
                         now=now())  # fmt: skip
    except (ExpiredLink, RevokedLink) as problem:
        ended = "expired" if isinstance(problem, ExpiredLink) else "revoked"
        # the link is ours, only no longer good: its program still says the language
        timezone = await run(engine, _timezone_of, engine, token, secret)
        return _page(request, language(timezone), "member_page_error.html", 410, ended=ended)
    except NotFound:  # a token not ours, its link, the program or the member gone
        return _page(request, language(None), "member_page_error.html", 404, ended=None)
    return _page(request, language(view.timezone), "member_page.html", 200,
                 **page_context(view, target.expires_at))  # fmt: skip


# the API's routes that make, list and revoke a member's links


@router.post(LINKS + "/link", status_code=201, tags=["members"],
             summary="A personal link to the member's page",
             openapi_extra=LINK_OPENAPI)  # fmt: skip
async def make_link(
    request: Request, program: str, member: str, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*LINK_MAKERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """A signed link to the member's page, which shows it without a password: valid
    for `days` days (default 365; `null`: no end) until revoked; `label` notes where
    it went. The address is `KOPILKA_PUBLIC_URL` when set, else the one this request
    came to. Admin, support and partner keys; not pos."""
    body = await json_body(request) if (await request.body()).strip() else {}
    days, label = member_links.link_request(body)
    made, is_new = await run(
        engine, member_links.create_link, engine, program, member, now=now(), days=days,
        actor=f"key:{who.key_id}", label=label, idempotency_key=idempotency_key,
    )  # fmt: skip
    target = member_links.target_of(program, made)
    base_url = os.environ.get("KOPILKA_PUBLIC_URL") or str(request.base_url)
    url = member_links.link_url(base_url, request.app.state.member_link_secret, target)
    answer = {"id": target.link_id, "url": url, "expires_at": made["link"]["expires_at"]}
    return created(answer, is_new)


@router.get(LINKS + "/links", tags=["members"], summary="The member's personal links",
            openapi_extra=problems(answer=(200, LINKS_EXAMPLE)))  # fmt: skip
async def list_links(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*LINK_READERS))],
    before: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = LINKS_PAGE,
) -> Any:  # fmt: skip
    """The member's links, newest first, revoked and expired ones too — never their
    tokens; `next` is the next page's `before`."""
    return await run(engine, member_links.list_links, engine, program, member,
                     before=before, limit=limit)  # fmt: skip


@router.delete(LINKS + "/links/{link}", tags=["members"], summary="Revoke a personal link",
               openapi_extra=problems(answer=(200, REVOKED_EXAMPLE)))  # fmt: skip
async def revoke_link(
    program: str, member: str, link: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*LINK_MAKERS))],
) -> Any:  # fmt: skip
    """Revoke one of the member's links: its page answers 410 at once, the member's
    other links keep working. Revoking it again answers the same."""
    return await run(engine, member_links.revoke_link, engine, program, member, link,
                     now=now())  # fmt: skip


@router.post(LINKS + "/links/revoke", tags=["members"],
             summary="Revoke all of the member's personal links",
             openapi_extra=problems(answer=(200, REVOKED_ALL_EXAMPLE)))  # fmt: skip
async def revoke_links(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*LINK_MAKERS))],
    idempotency_key: IdempotencyKey = None,
) -> Any:  # fmt: skip
    """Revoke every link of the member that still works (say, one leaked and the member
    can't tell which): `revoked` is how many this call ended."""
    return await run(engine, member_links.revoke_links, engine, program, member,
                     now=now(), idempotency_key=idempotency_key)  # fmt: skip


def page_context(view: MemberView, expires_at: datetime | None) -> dict[str, Any]:
    """What `member_page.html` is rendered with, for `view` by a link ending `expires_at`."""
    card = view.member["card"]
    return {"view": view, "figures": figures_shown(view.balance),
            "expiring": expiring_soon(view.balance["expiring"]), "expires_at": expires_at,
            "qr": qr_svg(card), "bar": barcode_svg(card)}  # fmt: skip


def _timezone_of(engine: Engine, token: str, secret: str) -> str | None:
    """The time zone of the program a link (one we signed) names; None if it is gone."""
    program = signed_target(token, secret=secret).program
    try:
        with engine.connect() as connection:
            return load_program(connection, program).calculator.program.timezone
    except NotFound:
        return None


def _page(request: Request, language: str, template: str, status: int,
          **context: Any) -> Response:  # fmt: skip
    i18n.use_language(language)
    html = templates.get_template(template).render(
        language=language, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
