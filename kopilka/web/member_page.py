"""The member page (issue 8): a member's balance, tier, history, coupons and card, reached
by a personal link — no password. Mounted by `register(app, engine)`:

    GET  /m/{token}                                the page (?lang=ru|en)
    POST /v1/programs/{program}/members/{member}/link   a new personal link
         (admin, support and pos keys; body `{"days": 30}` or `{"days": null}`, optional)

The token is made and checked by `kopilka.services.member_links`; a token that is not
ours is answered by a friendly 404 page, an expired one by a 410 page. The card is drawn
on the server as inline SVG — a QR code (segno) and a Code 128 barcode (python-barcode),
both holding the card number — so the page needs no script and nothing from elsewhere.

Texts: the `member` catalog (`locale/<lang>/LC_MESSAGES/member.po`), compiled in memory
like the console's; a message it lacks is looked up in the console's `messages` catalog
(the reasons of movements, "points available"…), so the two never have to be edited
together.
"""

from __future__ import annotations

import gettext
import os
import secrets
from functools import cache
from io import BytesIO
from typing import Any

import barcode  # type: ignore[import-untyped]  # python-barcode ships no type hints
import segno
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import Engine

from kopilka.api.common import MEMBER_WRITERS, caller, json_body, now, run
from kopilka.api.schemas import problems
from kopilka.domain.errors import InvalidInput, NotFound, Problem
from kopilka.services import keys
from kopilka.services.member_links import (
    DEFAULT_DAYS,
    MAX_DAYS,
    ExpiredLink,
    expiry_of,
    member_link,
    member_view,
    read_token,
)
from kopilka.web import i18n
from kopilka.web.pages import HERE

LINK_MAKERS = ("admin", "support", "pos")
assert set(LINK_MAKERS) <= set(MEMBER_WRITERS)
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
    },
    "additionalProperties": False,
}  # fmt: skip
LINK_EXAMPLE = {"url": "https://loyalty.example/m/eyJwIjoiemVybm8iLCJtIjoxLCJlIjoxODA0NjY1NjAwfQ.x",
                "expires_at": "2027-03-10T09:00:00+00:00"}  # fmt: skip
LINK_OPENAPI = {
    "requestBody": {"required": False, "content": {"application/json": {
        "schema": LINK_BODY, "example": {"days": 30}}}},
    **problems(answer=(201, LINK_EXAMPLE)),
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


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
    gettext=gettext_, ngettext=ngettext_, newstyle=True
)
templates.filters.update(
    points=i18n.format_points, number=i18n.format_number, money=i18n.format_money,
    moment=i18n.format_moment, day=i18n.format_day,
)  # fmt: skip
templates.globals.update(languages=i18n.LANGUAGES)


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


# — mounting —


def register(app: FastAPI, engine: Engine, *, secret: str | None = None) -> None:
    """Mount the member page and the link route on `app`. `secret` signs the links
    (default: `KOPILKA_SECRET`, as the console's sessions; without it a random one, and
    links end when the process does)."""
    app.state.member_link_secret = (
        secret or os.environ.get("KOPILKA_SECRET") or secrets.token_urlsafe(32)
    )

    @app.get("/m/{token}", include_in_schema=False)
    async def member_page(request: Request, token: str) -> Response:
        language = i18n.choose_language(request.query_params.get("lang"), None,
                                        request.headers.get("accept-language", ""))  # fmt: skip
        try:
            target = read_token(token, secret=app.state.member_link_secret, now=now())
            view = await run(engine, member_view, engine, target.program, target.member_id,
                             now=now())  # fmt: skip
        except ExpiredLink:
            return _page(request, language, "member_page_error.html", 410, expired=True)
        except NotFound:  # a token not ours, the program or the member gone
            return _page(request, language, "member_page_error.html", 404, expired=False)
        return _page(request, language, "member_page.html", 200, view=view,
                     expires_at=target.expires_at, qr=qr_svg(view.member["card"]),
                     bar=barcode_svg(view.member["card"]))  # fmt: skip

    @app.post("/v1/programs/{program}/members/{member}/link", status_code=201,
              tags=["members"], summary="A personal link to the member's page",
              openapi_extra=LINK_OPENAPI)  # fmt: skip
    async def make_link(
        request: Request, program: str, member: str,
        _principal: keys.Principal = Depends(caller(*LINK_MAKERS)),  # noqa: B008
    ) -> JSONResponse:  # fmt: skip
        """A signed link to the member's page, which shows it without a password: valid
        for `days` days (default 365; `null`: no end). The address is `KOPILKA_PUBLIC_URL`
        when set, else the one this request came to."""
        body = await json_body(request) if (await request.body()).strip() else {}
        days = _days_of(body)
        moment = now()
        base_url = os.environ.get("KOPILKA_PUBLIC_URL") or str(request.base_url)
        url = await run(engine, member_link, engine, program, member, base_url=base_url,
                        secret=app.state.member_link_secret, now=moment, days=days)  # fmt: skip
        expires_at = expiry_of(moment, days)
        return JSONResponse(
            {"url": url, "expires_at": expires_at.isoformat() if expires_at else None},
            status_code=201,
        )


def _days_of(body: Any) -> int | None:
    if not isinstance(body, dict):
        raise InvalidInput([Problem("", 'must be an object like {"days": 30}')])
    unknown = sorted(set(body) - {"days"}, key=str)
    if unknown:
        raise InvalidInput([Problem(str(key), "unknown key") for key in unknown])
    days = body.get("days", DEFAULT_DAYS)
    expiry_of(now(), days)  # names bad days as the service does
    assert days is None or isinstance(days, int)
    return days


def _page(request: Request, language: str, template: str, status: int,
          **context: Any) -> Response:  # fmt: skip
    i18n.use_language(language)
    html = templates.get_template(template).render(
        language=language, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
