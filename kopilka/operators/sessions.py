"""The console's session: a signed cookie, and the CSRF check every form POST passes.

The cookie holds the CSRF token, the chosen language and, once signed in, a random
session token, signed with the server's secret (itsdangerous) and dated: older than
`MAX_AGE` it is not accepted. It is HttpOnly (no script can read it), SameSite=Lax
(another site's form can't post with it) and Secure when the console is served over
https. Whom a session token signs in is asked of the database on each request
(`operators.session_operator`): signing out ends the token there, so a copy of the cookie
is worth nothing afterwards, and disabling an operator ends their sessions at once.

CSRF: each session has a random token; every form carries it in a hidden field (htmx
requests in the `X-CSRF-Token` header) and a POST without the session's token is
refused. A POST whose `Origin` or `Sec-Fetch-Site` says another site sent it is refused
as well, before the token is even looked at.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from kopilka.operators.handlers import SESSION_HOURS

COOKIE = "kopilka_console"
COOKIE_PATH = "/console"
MAX_AGE = SESSION_HOURS * 3600
MAX_TOKEN = 100  # ours are 43 characters
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    csrf: str
    token: str | None = None  # the signed-in session's, see `operators.start_session`
    language: str | None = None

    @staticmethod
    def fresh(language: str | None = None) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), language=language)

    def signed_in(self, token: str) -> Session:
        """A new session for a signed-in operator: a new CSRF token, so a token seen
        before the sign-in (a fixation attempt) is worth nothing after it."""
        return replace(Session.fresh(self.language), token=token)

    def signed_out(self) -> Session:
        return Session.fresh(self.language)


class Sessions:
    """Reads and writes the session cookie with one secret."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="kopilka.console.session")

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._signer.loads(raw, max_age=MAX_AGE)
        except BadSignature:  # tampered, signed with another secret, or expired
            return None
        return _session_from(data)

    def write(self, request: Request, response: Response, session: Session) -> None:
        data = {"c": session.csrf, "s": session.token, "l": session.language}
        response.set_cookie(
            COOKIE, self._signer.dumps(data), max_age=MAX_AGE, path=COOKIE_PATH,
            httponly=True, samesite="lax", secure=request.url.scheme == "https",
        )  # fmt: skip


def _session_from(data: Any) -> Session | None:
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    token = data.get("s")
    language = data.get("l")
    return Session(
        csrf=data["c"],
        token=token if isinstance(token, str) and len(token) <= MAX_TOKEN else None,
        language=language if isinstance(language, str) else None,
    )


def is_same_origin(request: Request) -> bool:
    """False when the browser says another site made this request. The site is the
    request's `Host`, or — behind a reverse proxy that passes its own upstream address as
    `Host` — the public address `KOPILKA_PUBLIC_URL` names."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    public = urlsplit(os.environ.get("KOPILKA_PUBLIC_URL", "")).netloc
    return urlsplit(origin).netloc in {request.headers.get("host", ""), public} - {""}


def is_valid_csrf(session: Session | None, sent: str | None) -> bool:
    if session is None or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode())
