"""The member page's personal link, and what the page shows (issue 8).

A link is `{base_url}/m/{token}`: the token names the program and the member's id and,
unless made with `days=None`, when it expires; it is signed with the server's secret
(itsdangerous, HMAC-SHA256, a salt of its own, so neither a console session cookie nor
any other signed value of Kopilka is accepted as one). Whoever holds the link may look
at the member's page — no password — so a link is given to the member only, and a
shorter `days` is the way to limit a link that may be passed around. Changing the
secret (`KOPILKA_SECRET`) ends every link at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine

from kopilka.domain.errors import Conflict, InvalidInput, KopilkaError, NotFound, Problem
from kopilka.services import balances, coupons, members
from kopilka.services.members import find_member
from kopilka.services.programs import load_program

SALT = "kopilka.member.link"
DEFAULT_DAYS = 365
MAX_DAYS = 3660  # ten years: longer is a link that never ends — say so with days=None
MAX_TOKEN = 1000  # a longer "token" is not one of ours: refused before it is looked at
HISTORY = 20  # movements shown
COUPONS = 50
# coupons a member can use first, then those that may yet become usable, then the rest
COUPON_ORDER = {"issued": 0, "available": 0, "paused": 1, "expired": 2, "used": 3}


class BadLink(NotFound):
    """A token not signed by this server, altered, or naming no member."""


class ExpiredLink(KopilkaError):
    code = "link_expired"
    status = 410


@dataclass(frozen=True)
class LinkTarget:
    program: str
    member_id: int
    expires_at: datetime | None


def _signer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValueError("a secret is required to sign member links")
    return URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def expiry_of(now: datetime, days: int | None) -> datetime | None:
    """When a link made at `now` for `days` days ends (None: never); bad `days` named."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput([Problem("days", f"must be a whole number of days from 1 to "
                                            f"{MAX_DAYS}, or null for a link that does not "
                                            "expire")])  # fmt: skip
    return (now + timedelta(days=days)).astimezone(UTC).replace(microsecond=0)


def make_token(secret: str, target: LinkTarget) -> str:
    expires = int(target.expires_at.timestamp()) if target.expires_at is not None else None
    return _signer(secret).dumps({"p": target.program, "m": target.member_id, "e": expires})


def read_token(token: str, *, secret: str, now: datetime) -> LinkTarget:
    """Whom the token names; `BadLink` (404) if it is not ours, `ExpiredLink` (410)."""
    if len(token) > MAX_TOKEN:
        raise BadLink("this link is not valid")
    try:
        data: Any = _signer(secret).loads(token)
    except BadSignature:
        raise BadLink("this link is not valid") from None
    if not isinstance(data, dict):
        raise BadLink("this link is not valid")
    program, member_id, expires = data.get("p"), data.get("m"), data.get("e")
    if (not isinstance(program, str) or isinstance(member_id, bool)
            or not isinstance(member_id, int)
            or not (expires is None or (isinstance(expires, int)
                                        and not isinstance(expires, bool)))):  # fmt: skip
        raise BadLink("this link is not valid")
    expires_at = datetime.fromtimestamp(expires, UTC) if expires is not None else None
    if expires_at is not None and now >= expires_at:
        raise ExpiredLink(f"this link expired at {expires_at.isoformat()}")
    return LinkTarget(program, member_id, expires_at)


def member_link(
    engine: Engine, program: str, member_ref: str, *, base_url: str, secret: str,
    now: datetime, days: int | None = DEFAULT_DAYS,
) -> str:  # fmt: skip
    """The member's personal link to their page, `{base_url}/m/{token}`, valid for `days`
    days from `now` (None: with no end). An unknown member is `NotFound`, an erased one
    `Conflict`; bad `days` are `InvalidInput`."""
    expires_at = expiry_of(now, days)
    with engine.connect() as connection:
        loaded = load_program(connection, program)
        member = find_member(connection, loaded.program_id, member_ref)
    if member.status == "erased":
        raise Conflict(f"member {member_ref!r} was erased")
    token = make_token(secret, LinkTarget(program, int(member.id), expires_at))
    return f"{base_url.rstrip('/')}/m/{token}"


# — what the page shows —


@dataclass(frozen=True)
class Progress:
    """One threshold of the next tier: what the member has and what it needs."""

    what: str  # spend | purchases | tenure_days
    have: Decimal
    need: Decimal
    percent: int  # 0–100, for the bar


@dataclass(frozen=True)
class MemberView:
    program: str
    program_name: str
    currency: str
    timezone: str
    member: dict[str, Any]  # as `members.read_member` answers (card, name, status, tier…)
    balance: dict[str, Any]  # as `balances.balance` answers
    moves: list[dict[str, Any]]  # the newest movements, as `balances.history` lists them
    coupons: list[dict[str, Any]]  # usable first, then paused, expired, used
    progress: list[Progress]  # toward `member["next_tier"]`; empty at the top tier
    bought: dict[str, list[str]]  # a next tier's "buy these" condition not yet met


def member_view(
    engine: Engine, program: str, member_id: int, *, now: datetime, history: int = HISTORY,
) -> MemberView:  # fmt: skip
    """Everything the member page shows, for the member a link names. A member erased
    since (or never of this program) is `BadLink`."""
    ref = str(member_id)
    try:
        member = members.read_member(engine, program, ref, now=now)
    except NotFound:
        raise BadLink("this link is not valid") from None
    if member["status"] == "erased":
        raise BadLink("this link is not valid")
    with engine.connect() as connection:
        settings = load_program(connection, program).calculator.program
    held = coupons.member_coupons(engine, program, ref, now=now, limit=COUPONS)["items"]
    ordered = sorted(held, key=lambda c: COUPON_ORDER.get(c["status"], 4))  # stable: newest first
    missing = (member.get("next_tier") or {}).get("missing", {})
    return MemberView(
        program=program, program_name=settings.name, currency=settings.currency,
        timezone=settings.timezone, member=member,
        balance=balances.balance(engine, program, ref),
        moves=balances.history(engine, program, ref, limit=history)["items"],
        coupons=ordered, progress=_progress(settings, member, missing),
        bought=missing.get("bought", {}),
    )  # fmt: skip


def _progress(settings: Any, member: dict[str, Any], missing: dict[str, Any]) -> list[Progress]:
    next_tier = member.get("next_tier")
    tiers = settings.tiers
    if next_tier is None or tiers is None:
        return []
    level = next((lv for lv in tiers.levels if lv.code == next_tier["code"]), None)
    if level is None or level.qualify is None:
        return []
    q = level.qualify
    scale = Decimal(10) ** settings.money_digits
    needs: list[tuple[str, Decimal]] = []
    if q.spend is not None:
        needs.append(("spend", Decimal(q.spend) / scale))
    if q.purchases is not None:
        needs.append(("purchases", Decimal(q.purchases)))
    if q.tenure_days is not None:
        needs.append(("tenure_days", Decimal(q.tenure_days)))
    found = []
    for what, need in needs:
        have = max(need - Decimal(str(missing.get(what, 0))), Decimal(0))
        percent = int(have * 100 / need) if need > 0 else 100
        found.append(Progress(what, have, need, min(percent, 100)))
    return found
