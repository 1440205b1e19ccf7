"""Rendering the console's pages: one Jinja2 environment (autoescape on), the request's
session and language, and the two ways a page ends early (an error page, a redirect)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kopilka.kernel.errors import KopilkaError
from kopilka.kernel.reading import text_problem
from kopilka.operators.sessions import CSRF_FIELD, Session, Sessions
from kopilka.platform.console import i18n
from kopilka.platform.problems import status_of

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_URL = "/console/static"
UNSTORABLE = ("A field holds a control character or half of a surrogate pair: nothing was "
              "saved. Go back and remove it.")  # fmt: skip

templates = i18n.environment(i18n.gettext_, i18n.ngettext_)
templates.globals.update(static=STATIC_URL, csrf_field=CSRF_FIELD)


class PageError(Exception):
    """Ends a request with an error page: `status`, a message for the operator (one of
    the catalog's, so it is translated) and, optionally, the service's own words."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail

    @classmethod
    def of(cls, error: KopilkaError, message: str) -> PageError:
        """The page of a service's error: the status the API answers it with (one map,
        `kopilka.platform.problems`), the operator's message and the service's words."""
        return cls(status_of(error), message, error.detail)


def refuse_unstorable(fields: Iterable[tuple[str, object]]) -> None:
    """Refuse a form with a field no text may hold: a control character (a textarea's tab
    and line breaks aside) or half of a surrogate pair — the API's rule for text
    (`kopilka.kernel.reading.text_problem`), so nothing of it is stored."""
    for name, value in fields:
        if not isinstance(value, str):  # an uploaded file: the forms take none
            continue
        problem = text_problem(value, max_length=len(value), multiline=True)
        if problem is not None:
            raise PageError(422, UNSTORABLE, f"{name}: {problem}")


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class Visit:
    """One request's console state: its session (new or read from the cookie) and
    whether the response must send the cookie again."""

    def __init__(self, request: Request, sessions: Sessions) -> None:
        self.request, self.sessions = request, sessions
        found = sessions.read(request)
        self.is_changed = found is None
        self.session = found or Session.fresh()
        language = i18n.choose_language(
            request.query_params.get("lang"), self.session.language,
            request.headers.get("accept-language", ""),
        )  # fmt: skip
        if request.query_params.get("lang") in i18n.LANGUAGES:
            self.replace(Session(self.session.csrf, self.session.token, language))
        i18n.use_language(language)
        self.language = language

    def replace(self, session: Session) -> None:
        self.session, self.is_changed = session, True

    def finish(self, response: Response) -> Response:
        if self.is_changed:
            self.sessions.write(self.request, response, self.session)
        return response


def visit_of(request: Request) -> Visit:
    visit = getattr(request.state, "console_visit", None)
    if not isinstance(visit, Visit):
        visit = Visit(request, request.app.state.console_sessions)
        request.state.console_visit = visit
    return visit


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """The page, in the visit's language, with the session cookie when it changed."""
    visit = visit_of(request)
    i18n.use_language(visit.language)  # this may run in another context than the visit began
    html = templates.get_template(template).render(
        request=request, language=visit.language, csrf=visit.session.csrf,
        path=request.url.path, switch=language_links(request), **context,
    )  # fmt: skip
    return visit.finish(HTMLResponse(html, status_code=status, headers=PAGE_HEADERS))


def language_links(request: Request) -> dict[str, str]:
    """Where each language's switch leads: this page again in that language. A page that
    answers a form POST has no address of its own to GET, so its switch leads back to
    the console page the form was on (the Referer, when it is this site's)."""
    if request.method == "GET":
        path, query = request.url.path, request.url.query
    else:
        path, query = _console_referer(request)
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
    return {code: f"{path}?{urlencode([*kept, ('lang', code)])}" for code in i18n.LANGUAGES}


def _console_referer(request: Request) -> tuple[str, str]:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.headers.get("host") and referer.path.startswith("/console/"):
        return referer.path, referer.query
    return "/console/login", ""


def redirect(request: Request, location: str) -> Response:
    """303: after a form POST the browser GETs the next page (a reload doesn't repost)."""
    return visit_of(request).finish(RedirectResponse(location, status_code=303,
                                                     headers=PAGE_HEADERS))  # fmt: skip


# Every console answer: no script but our own files, no framing, no sniffing, and nothing
# kept by caches (pages show members' phones and emails). Inline style attributes stay
# allowed: the charts' bars are sized by them, and htmx adds its indicator style.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
