"""The member page's personal links, and what the page shows (issue 8).

A link is `{base_url}/m/{token}`. Each link is a row of `member_links`, made by
`create_link`: the token carries the row's random `link_id`, the program, the member's
id and — unless made with `days=None` — when it expires, signed with the server's secret
(itsdangerous, HMAC-SHA256, a salt of its own, so neither a console session cookie nor
any other signed value of Kopilka is accepted as one). Opening a link checks the
signature and then the row: a link whose row is gone, names another member or was
revoked opens nothing, so one leaked link is ended by `revoke_link` (or all of a
member's by `revoke_links`) without touching anyone else's. Changing the secret
(`KOPILKA_SECRET`) still ends every link at once.

The token is never stored — not in `member_links`, not in an `Idempotency-Key`'s
remembered answer: signing is deterministic, so a replay signs the same token again
from the row, and a copy of the database opens no member's page.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, Engine, insert, select, update

from kopilka.kernel.errors import Conflict, InvalidInput, KopilkaError, NotFound, Problem
from kopilka.kernel.reading import MAX_TEXT, text_problem
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members import balances
from kopilka.members import handlers as members
from kopilka.members.handlers import find_member
from kopilka.members.link_tables import member_links
from kopilka.platform.idempotency import AfterWrite, Answer, idempotent, retrying
from kopilka.platform.tables import members as member_rows
from kopilka.platform.tables import programs
from kopilka.programs.handlers import load_program

SALT = "kopilka.member.link"
DEFAULT_DAYS = 365
MAX_DAYS = 3660  # ten years: longer is a link that never ends — say so with days=None
MAX_TOKEN = 1000  # a longer "token" is not one of ours: refused before it is looked at
LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what `new_link_id` makes, and no more
LINKS_PAGE = 50
HISTORY = 20  # movements shown
COUPONS = 50
# coupons a member can use first, then those that may yet become usable, then the rest
COUPON_ORDER = {"issued": 0, "available": 0, "paused": 1, "expired": 2, "used": 3}


class BadLink(NotFound):
    """A token not signed by this server, altered, or naming no link or member."""


class ExpiredLink(KopilkaError):
    code = "link_expired"


class RevokedLink(KopilkaError):
    code = "link_revoked"


@dataclass(frozen=True)
class LinkTarget:
    program: str
    member_id: int
    link_id: str
    expires_at: datetime | None


def _signer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValueError("a secret is required to sign member links")
    return URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def new_link_id() -> str:
    """A link's random id: 128 bits, so ids reveal nothing (not how many links there
    are) and can't be guessed — though a token needs the signature as well."""
    return secrets.token_urlsafe(16)


def expiry_of(now: datetime, days: int | None) -> datetime | None:
    """When a link made at `now` for `days` days ends (None: never); bad `days` named."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput([Problem("days", f"must be a whole number of days from 1 to "
                                            f"{MAX_DAYS}, or null for a link that does not "
                                            "expire")])  # fmt: skip
    return (now + timedelta(days=days)).astimezone(UTC).replace(microsecond=0)


def link_request(body: Any) -> tuple[int | None, str | None]:
    """`days` and `label` of a request for a link (`{"days": 30, "label": "sms"}`, either
    optional; `days: null` for no end date); each problem named."""
    if not isinstance(body, dict):
        raise InvalidInput([Problem("", 'must be an object like {"days": 30}')])
    unknown = sorted(set(body) - {"days", "label"}, key=str)
    if unknown:
        raise InvalidInput([Problem(str(key), "unknown key") for key in unknown])
    days = body.get("days", DEFAULT_DAYS)
    expiry_of(datetime.now(UTC), days)  # names bad days
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or not 1 <= len(label) <= MAX_TEXT):
        raise InvalidInput([Problem("label", f"must be text of 1 to {MAX_TEXT} characters")])
    if label is not None and (problem := text_problem(label)) is not None:
        raise InvalidInput([Problem("label", problem)])
    return days, label


# — tokens —


def make_token(secret: str, target: LinkTarget) -> str:
    expires = int(target.expires_at.timestamp()) if target.expires_at is not None else None
    return _signer(secret).dumps(
        {"l": target.link_id, "p": target.program, "m": target.member_id, "e": expires}
    )


def link_url(base_url: str, secret: str, target: LinkTarget) -> str:
    return f"{base_url.rstrip('/')}/m/{make_token(secret, target)}"


def signed_target(token: str, *, secret: str) -> LinkTarget:
    """What a token says, if this server signed it; `BadLink` otherwise. Says nothing of
    whether the link still works: `read_token` asks the database."""
    if len(token) > MAX_TOKEN:
        raise BadLink("this link is not valid")
    try:
        data: Any = _signer(secret).loads(token)
    except BadSignature:
        raise BadLink("this link is not valid") from None
    if not isinstance(data, dict):
        raise BadLink("this link is not valid")
    link_id, program = data.get("l"), data.get("p")
    member_id: Any = data.get("m")
    expires: Any = data.get("e")
    if not (isinstance(link_id, str) and LINK_ID.fullmatch(link_id)
            and isinstance(program, str) and _is_int(member_id)
            and (expires is None or _is_int(expires))):  # fmt: skip
        raise BadLink("this link is not valid")
    return LinkTarget(program, int(member_id), link_id, _moment(expires))


def _moment(seconds: int | None) -> datetime | None:
    """The expiry a token holds; one no clock can show is not one we signed."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadLink("this link is not valid") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_token(engine: Engine, token: str, *, secret: str, now: datetime) -> LinkTarget:
    """Whom the token names, if its link still works: `BadLink` (404) if it is not ours or
    its row is gone or says otherwise, `RevokedLink` (410), `ExpiredLink` (410)."""
    target = signed_target(token, secret=secret)
    with engine.connect() as connection:
        row = connection.execute(
            select(member_links.c.member_id, member_links.c.expires_at,
                   member_links.c.revoked_at, programs.c.code)
            .join(member_rows, member_rows.c.id == member_links.c.member_id)
            .join(programs, programs.c.id == member_rows.c.program_id)
            .where(member_links.c.link_id == target.link_id)
        ).one_or_none()  # fmt: skip
    if row is None or (row.code, row.member_id) != (target.program, target.member_id):
        raise BadLink("this link is not valid")
    if _seconds(row.expires_at) != _seconds(target.expires_at):
        raise BadLink("this link is not valid")  # signed by us, but not for this row
    if row.revoked_at is not None:
        raise RevokedLink(f"this link was revoked at {row.revoked_at.isoformat()}")
    if target.expires_at is not None and now >= target.expires_at:
        raise ExpiredLink(f"this link expired at {target.expires_at.isoformat()}")
    return target


def _seconds(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


# — making, listing and revoking links —


def link_json(row: Any) -> dict[str, Any]:
    """A link as the API lists it: never its token."""
    return {
        "id": row.link_id,
        "created_at": row.created_at.isoformat(),
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "created_by": row.created_by,
        "label": row.label,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def create_link(
    engine: Engine, program: str, member_ref: str, *, now: datetime, days: int | None,
    actor: str, label: str | None = None, idempotency_key: str | None = None,
    after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """A new link of the member: `({"link": …, "member_id": n}, made now)` — the row as
    `link_json` has it and the member's id, all `link_url` needs to sign its token. An
    unknown member is `NotFound`, an erased one `Conflict`. With an `Idempotency-Key`,
    a repeat answers the same link (made now: False). `after` writes beside the new row
    in its transaction (the console's audit row)."""
    expires_at = expiry_of(now, days)

    def attempt(connection: Connection) -> Answer:
        member = _member(connection, program, member_ref)
        if member.status == "erased":
            raise Conflict(f"member {member_ref!r} was erased")
        link_id = new_link_id()  # a fresh one if a retry follows a clash of ids
        connection.execute(insert(member_links).values(
            link_id=link_id, member_id=member.id, created_at=now, expires_at=expires_at,
            created_by=actor, label=label,
        ))  # fmt: skip
        link = _link(connection, link_id)
        if after is not None:
            after(connection, link)
        return {"link": link, "member_id": int(member.id)}, True

    request = {"member": member_ref, "days": days, "label": label}
    return idempotent(engine, program, idempotency_key, "member.link", request, now, attempt)


def target_of(program: str, made: dict[str, Any]) -> LinkTarget:
    """What the token of a link `create_link` answered holds."""
    link = made["link"]
    expires_at = link["expires_at"]
    return LinkTarget(program, int(made["member_id"]), link["id"],
                      datetime.fromisoformat(expires_at) if expires_at else None)  # fmt: skip


def member_link(
    engine: Engine, program: str, member_ref: str, *, base_url: str, secret: str,
    now: datetime, days: int | None = DEFAULT_DAYS, actor: str = "cli",
    label: str | None = None,
) -> str:  # fmt: skip
    """The member's new personal link to their page, `{base_url}/m/{token}`, valid for
    `days` days from `now` (None: with no end). An unknown member is `NotFound`, an erased
    one `Conflict`; bad `days` are `InvalidInput`. `actor` is who made it (the command
    line, unless told)."""
    made, _ = create_link(engine, program, member_ref, now=now, days=days, actor=actor,
                          label=label)  # fmt: skip
    return link_url(base_url, secret, target_of(program, made))


def list_links(
    engine: Engine, program: str, member_ref: str, *, before: str | None = None,
    limit: int = LINKS_PAGE,
) -> dict[str, Any]:  # fmt: skip
    """The member's links, newest first, revoked and expired ones too (never a token);
    `next` is the `before` of the next page: a link id."""
    with engine.connect() as connection:
        member = _member(connection, program, member_ref)
        query = select(member_links).where(member_links.c.member_id == member.id)
        if before is not None:
            query = query.where(member_links.c.id < _position(connection, member.id, before))
        rows = connection.execute(query.order_by(member_links.c.id.desc()).limit(limit + 1)).all()
    items = [link_json(row) for row in rows[:limit]]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def _position(connection: Connection, member_id: int, link_id: str) -> int:
    """Where a page that starts after `link_id` starts; a link not the member's is named."""
    found = _link_row(connection, member_id, link_id)
    if found is None:
        raise InvalidInput([Problem("before", "must be the id of one of the member's links")])
    return int(found.id)


def revoke_link(
    engine: Engine, program: str, member_ref: str, link_id: str, *, now: datetime,
    after: AfterWrite | None = None,
) -> dict[str, Any]:  # fmt: skip
    """End one of the member's links; revoking it again answers the same. A link not the
    member's (or of another program) is `NotFound`. `after` writes beside the revocation
    in its transaction, and is not called when it was revoked before."""

    def attempt(connection: Connection) -> dict[str, Any]:
        member = _member(connection, program, member_ref)
        row = _link_row(connection, member.id, link_id)
        if row is None:
            raise NotFound(f"link {link_id!r} of member {member_ref!r} does not exist")
        if row.revoked_at is not None:
            return link_json(row)
        connection.execute(
            update(member_links).where(member_links.c.id == row.id).values(revoked_at=now)
        )
        revoked = _link(connection, row.link_id)
        if after is not None:
            after(connection, revoked)
        return revoked

    return retrying(engine, attempt)


def revoke_links(
    engine: Engine, program: str, member_ref: str, *, now: datetime,
    idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> dict[str, Any]:  # fmt: skip
    """End every link of the member that still works (a member whose link leaked):
    `{member, revoked, revoked_at}`, `revoked` how many this call ended."""

    def attempt(connection: Connection) -> Answer:
        member = _member(connection, program, member_ref)
        ended = connection.execute(
            update(member_links)
            .where(member_links.c.member_id == member.id, member_links.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        answer = {"member": str(member.id), "revoked": ended, "revoked_at": now.isoformat()}
        if after is not None:
            after(connection, answer)
        return answer, True

    request = {"member": member_ref}
    answer, _ = idempotent(engine, program, idempotency_key, "member.links.revoke", request,
                           now, attempt)  # fmt: skip
    return answer


def _member(connection: Connection, program: str, member_ref: str) -> Any:
    return find_member(connection, load_program(connection, program).program_id, member_ref)


def _link_row(connection: Connection, member_id: int, link_id: str) -> Any:
    """The member's link `link_id`, or None; an id we could not have made is not looked up."""
    if not LINK_ID.fullmatch(link_id):
        return None
    mine = (member_links.c.link_id == link_id, member_links.c.member_id == member_id)
    return connection.execute(select(member_links).where(*mine)).one_or_none()


def _link(connection: Connection, link_id: str) -> dict[str, Any]:
    row = connection.execute(select(member_links).where(member_links.c.link_id == link_id)).one()
    return link_json(row)


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
