"""Coupon campaigns, their codes, and coupons through a purchase's life.

- Campaigns are managed over the API and kept in the database (not in the program
  file): created, listed, read with their counts, changed (pause, resume, extend …).
  What a campaign names must exist in the program's current version.
- A unique campaign's codes are generated in batches of up to a million: drawn by
  `kopilka.mechanics.coupons.codes` and inserted in chunks of one statement each
  (`INSERT … SELECT` over a JSON array, `ON CONFLICT DO NOTHING`); a code that collides
  with one the program already has is drawn again, so codes stay unique per program.
- A coupon is issued to a member (the channel recorded), gifted to another, looked up,
  exported as CSV.
- In a purchase (its transaction, the caller's): `load_coupons` reads what the database
  knows of the codes sent, `redeem_coupons` takes them — conditional UPDATEs, so of
  concurrent purchases with one single-use code exactly one wins — and
  `give_back_coupons` returns them on a whole refund or a cancelled hold.
"""

from __future__ import annotations

import io
import json
import secrets
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from itertools import islice
from random import Random
from typing import Any, NoReturn
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Select,
    Update,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from kopilka.checkout.mechanic import CouponWanted
from kopilka.kernel.errors import (
    Conflict,
    CouponInvalid,
    Duplicate,
    InvalidInput,
    NotFound,
    Problem,
)
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import Reader
from kopilka.mechanics.coupons import codes as coupon_codes
from kopilka.mechanics.coupons.model import (
    PUBLIC_CODE,
    Campaign,
    CampaignKind,
    CouponCheck,
    CouponState,
    OwnWindow,
    Units,
    campaign_document,
    coupon_status,
    program_problems,
    read_campaign,
)
from kopilka.mechanics.coupons.tables import (
    coupon_batches,
    coupon_campaigns,
    coupon_gifts,
    coupon_redemptions,
    coupons,
)
from kopilka.members.handlers import find_member
from kopilka.platform.csv_export import csv_writer
from kopilka.platform.idempotency import AfterWrite, Answer, followed, idempotent, retrying
from kopilka.platform.pages import newest_first
from kopilka.platform.statements import rows_together
from kopilka.platform.tables import events, members, program_versions, programs
from kopilka.programs.handlers import (
    CURRENT_VERSION_COLUMNS,
    LoadedProgram,
    compiled,
    load_program,
)

CHANNELS = ("sms", "email", "push", "partner_site", "pos")
MAX_BATCH = 1_000_000
CHUNK = 50_000  # codes per INSERT statement: one JSON array parameter of ~0.7 MB
FIXED_KEYS = ("code", "kind", "public_code")  # a campaign's identity: never changed
MERGED_KEYS = ("valid", "limits", "conditions")  # a PATCH changes the keys it names
STANDINGS = ("available", "issued", "used")  # what an export may be filtered by
CSV_COLUMNS = ("code", "status", "owner", "card", "channel", "issued_at", "uses", "batch")

__all__ = [
    "create_batch",
    "create_campaign",
    "gift_coupon",
    "give_back_coupons",
    "issue_coupon",
    "list_batches",
    "list_campaigns",
    "load_coupons",
    "member_coupons",
    "read_campaign_of",
    "read_coupon",
    "redeem_coupons",
    "update_campaign",
]


# — campaigns —


def create_campaign(
    engine: Engine, program_code: str, data: object, *, actor: str, now: datetime,
    idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """A new campaign from its document; a public campaign's code is created with it.
    A code taken (the campaign's, or the public code) is `409 conflict`. `after` writes
    beside it in its transaction."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        campaign = _valid_campaign(data, program)
        _refuse_taken(connection, program.program_id, campaign)
        campaign_id = connection.execute(
            insert(coupon_campaigns)
            .values(program_id=program.program_id, **_campaign_columns(campaign, program),
                    codes=0, uses=0, discount=0, points=0, actor=actor, created_at=now,
                    updated_at=now)
            .returning(coupon_campaigns.c.id)
        ).scalar_one()  # fmt: skip
        if campaign.public_code is not None:
            connection.execute(insert(coupons).values(
                program_id=program.program_id, campaign_id=campaign_id,
                code=campaign.public_code, uses=0))  # fmt: skip
            _count_codes(connection, campaign_id, 1)
        row = _campaign_row(connection, program.program_id, campaign.code)
        return _campaign_json(connection, row, program, now, counted=True), True

    try:
        return idempotent(engine, program_code, idempotency_key, "coupon.campaign", data, now,
                          followed(attempt, after))  # fmt: skip
    except IntegrityError:  # a concurrent request took the code first, every retry
        raise Duplicate("a campaign or coupon with this code exists") from None


def _valid_campaign(data: object, program: LoadedProgram) -> Campaign:
    """The campaign the document declares, checked against the program; every problem
    named (`InvalidInput`)."""
    rules = program.calculator.program
    problems: list[Problem] = []
    campaign = read_campaign(data, Units.of(rules), problems)
    if campaign is not None:
        problems += program_problems(campaign, rules)
    if problems or campaign is None:
        raise InvalidInput(problems)
    return campaign


def _refuse_taken(connection: Connection, program_id: int, campaign: Campaign) -> None:
    taken = connection.execute(
        select(coupon_campaigns.c.id).where(coupon_campaigns.c.program_id == program_id,
                                            coupon_campaigns.c.code == campaign.code)
    ).first()  # fmt: skip
    if taken is not None:
        raise Duplicate(f"campaign {campaign.code} exists")
    if campaign.public_code is not None and _coupon_rows(connection, program_id,
                                                         [campaign.public_code]):  # fmt: skip
        raise Duplicate(f"code {campaign.public_code} is taken in this program")


def _campaign_columns(campaign: Campaign, program: LoadedProgram) -> dict[str, Any]:
    limits = campaign.limits
    return {
        "code": campaign.code, "kind": campaign.kind.value,
        "document": campaign_document(campaign, Units.of(program.calculator.program)),
        "valid_from": campaign.valid_from, "valid_until": campaign.valid_until,
        "paused": campaign.paused, "per_code": limits.per_code,
        "per_member": limits.per_member, "total": limits.total, "budget": limits.budget,
    }  # fmt: skip


def _count_codes(connection: Connection, campaign_id: int, count: int) -> None:
    connection.execute(
        update(coupon_campaigns)
        .where(coupon_campaigns.c.id == campaign_id)
        .values(codes=coupon_campaigns.c.codes + count)
    )


def _campaign_row(
    connection: Connection, program_id: int, code: str, *, lock: bool = False
) -> Row[Any]:
    query = select(coupon_campaigns).where(coupon_campaigns.c.program_id == program_id,
                                           coupon_campaigns.c.code == code)  # fmt: skip
    row = connection.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFound(f"coupon campaign {code!r} does not exist")
    return row


def _campaign_of(row: Any, units: Units) -> Campaign:
    """The campaign a stored row keeps (its document was written by `campaign_document`)."""
    problems: list[Problem] = []
    campaign = read_campaign(row.document, units, problems)
    if campaign is None:  # only if the program's units changed under a stored campaign
        raise Conflict(f"campaign {row.code} no longer reads: {problems[0]}")
    return campaign


def _campaign_json(
    connection: Connection, row: Any, program: LoadedProgram, now: datetime, *,
    counted: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The campaign as the API shows it, with its redemption totals; `counted`: also how
    many of its codes are issued and used (a count over its codes: one campaign only)."""
    rules = program.calculator.program
    campaign = _campaign_of(row, Units.of(rules))
    answer: dict[str, Any] = {
        **row.document,
        "status": _campaign_status(campaign, now),
        "codes": {"generated": row.codes},
        "redemptions": {"count": row.uses, "discount": format_minor(row.discount,
                        rules.money_digits), "points": format_minor(row.points,
                        rules.points.precision)},
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
        "actor": row.actor,
    }  # fmt: skip
    if counted:
        answer["codes"].update(_code_counts(connection, row))
    return answer


def _campaign_status(campaign: Campaign, now: datetime) -> str:
    """`scheduled`, `active`, `paused` or `ended`."""
    if campaign.valid_until is not None and now >= campaign.valid_until:
        return "ended"
    if campaign.paused:
        return "paused"
    if campaign.valid_from is not None and now < campaign.valid_from:
        return "scheduled"
    return "active"


def _code_counts(connection: Connection, row: Any) -> dict[str, int]:
    used = coupons.c.uses >= row.per_code if row.per_code is not None else false()
    counts = connection.execute(
        select(func.count(coupons.c.owner_member_id), func.count().filter(used),
               func.count().filter(coupons.c.uses > 0))
        .where(coupons.c.campaign_id == row.id)
    ).one()  # fmt: skip
    return {"issued": counts[0], "used": counts[1], "redeemed": counts[2]}


def list_campaigns(engine: Engine, program_code: str, *, now: datetime) -> dict[str, Any]:
    """The program's campaigns, newest first, with their redemption totals."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        rows = connection.execute(
            select(coupon_campaigns)
            .where(coupon_campaigns.c.program_id == program.program_id)
            .order_by(coupon_campaigns.c.id.desc())
        ).all()
        return {"items": [_campaign_json(connection, row, program, now) for row in rows]}


def read_campaign_of(
    engine: Engine, program_code: str, code: str, *, now: datetime
) -> dict[str, Any]:
    """One campaign with its totals and how many of its codes are issued and used."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        row = _campaign_row(connection, program.program_id, code)
        return _campaign_json(connection, row, program, now, counted=True)


def update_campaign(
    engine: Engine, program_code: str, code: str, data: object, *, now: datetime,
    after: AfterWrite | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Change a campaign: the keys given replace the stored ones (within `valid`,
    `limits` and `conditions` key by key; null clears one); `code`, `kind` and
    `public_code` can't change. The result is checked as a new campaign would be.
    `after` writes beside the change in its transaction."""
    if not isinstance(data, dict):
        raise InvalidInput([Problem("", "must be an object of the campaign's keys to change")])
    fixed = [Problem(key, "can't be changed: create another campaign")
             for key in FIXED_KEYS if key in data]  # fmt: skip
    if fixed:
        raise InvalidInput(fixed)

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        row = _campaign_row(connection, program.program_id, code, lock=True)
        campaign = _valid_campaign(_merged(row.document, data), program)
        connection.execute(
            update(coupon_campaigns)
            .where(coupon_campaigns.c.id == row.id)
            .values(**_campaign_columns(campaign, program), updated_at=now)
        )
        changed = _campaign_row(connection, program.program_id, code)
        answer = _campaign_json(connection, changed, program, now, counted=True)
        if after is not None:
            after(connection, answer)
        return answer

    return retrying(engine, attempt)


def _merged(document: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(document)
    for key, value in change.items():
        if key in MERGED_KEYS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# — batches of codes —


def create_batch(
    engine: Engine, program_code: str, campaign_code: str, data: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None, rng: Random | None = None,
    after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """`{count}` new codes for a unique campaign (1 to a million), unique in the program.
    `rng`: where the randomness comes from (default: the operating system's)."""
    problems: list[Problem] = []
    count = Reader(data, "", problems, ("count",)).integer("count", required=True, minimum=1,
                                                            maximum=MAX_BATCH)  # fmt: skip
    if problems or count is None:
        raise InvalidInput(problems)

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        # the campaign's row is held: batches of one campaign are made one at a time
        campaign = _campaign_row(connection, program.program_id, campaign_code, lock=True)
        if campaign.kind != CampaignKind.UNIQUE.value:
            raise Conflict(f"campaign {campaign_code} has one public code; batches are for "
                           "unique campaigns")  # fmt: skip
        batch_id = connection.execute(
            insert(coupon_batches)
            .values(program_id=program.program_id, campaign_id=campaign.id, count=count,
                    actor=actor, created_at=now)
            .returning(coupon_batches.c.id)
        ).scalar_one()  # fmt: skip
        _insert_codes(connection, program.program_id, campaign.id, batch_id, count,
                      rng or secrets.SystemRandom())  # fmt: skip
        _count_codes(connection, campaign.id, count)
        return _batch_json(_batch_row(connection, batch_id), campaign_code), True

    request = {"campaign": campaign_code, "body": data}
    return idempotent(engine, program_code, idempotency_key, "coupon.batch", request, now,
                      followed(attempt, after))  # fmt: skip


def _insert_codes(
    connection: Connection, program_id: int, campaign_id: int, batch_id: int, count: int,
    rng: Random,
) -> None:  # fmt: skip
    """`count` new codes, none already the program's: what collides is drawn again."""
    statement = _insert_codes_statement(connection.dialect.name)
    values = {"program_id": program_id, "campaign_id": campaign_id, "batch_id": batch_id}
    missing = count
    while missing:
        codes = coupon_codes.batch(rng, missing)
        while chunk := list(islice(codes, CHUNK)):
            inserted = connection.execute(statement, {**values, "codes": json.dumps(chunk)})
            missing -= inserted.rowcount


def _insert_codes_statement(dialect: str) -> Any:
    """One INSERT of a whole chunk: the codes travel as one JSON array, so the statement
    is short, the same every time, and the database unpacks the rows itself."""
    if dialect == "postgresql":
        rows = "json_array_elements_text(CAST(:codes AS json)) AS chunk(value)"
        where = ""
    else:  # SQLite: `WHERE true` tells its parser the ON CONFLICT is the upsert's
        rows, where = "json_each(:codes)", " WHERE true"
    return text(
        "INSERT INTO coupons (program_id, campaign_id, batch_id, code, uses) "
        f"SELECT :program_id, :campaign_id, :batch_id, value, 0 FROM {rows}{where} "
        "ON CONFLICT (program_id, code) DO NOTHING"
    )


def _batch_row(connection: Connection, batch_id: int) -> Row[Any]:
    return connection.execute(select(coupon_batches).where(coupon_batches.c.id == batch_id)).one()


def _batch_json(row: Any, campaign_code: str) -> dict[str, Any]:
    return {"id": str(row.id), "campaign": campaign_code, "count": row.count,
            "actor": row.actor, "created_at": row.created_at.isoformat()}  # fmt: skip


def list_batches(engine: Engine, program_code: str, campaign_code: str) -> dict[str, Any]:
    """The campaign's batches, newest first."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        campaign = _campaign_row(connection, program.program_id, campaign_code)
        rows = connection.execute(
            select(coupon_batches)
            .where(coupon_batches.c.campaign_id == campaign.id)
            .order_by(coupon_batches.c.id.desc())
        ).all()
    return {"items": [_batch_json(row, campaign_code) for row in rows]}


# — exporting codes —


def code_page(
    engine: Engine, program_code: str, campaign_code: str, *, status: str | None = None,
    after: int | None = None, limit: int = 1000,
) -> dict[str, Any]:  # fmt: skip
    """The campaign's codes in the order they were made: `{items, next}` (`next`: the
    `after` of the following page). `status`: only `available` (not issued, not used),
    `issued` (to a member, a use left) or `used` codes."""
    if status is not None and status not in STANDINGS:
        raise InvalidInput([Problem("status", f"{status!r} is not one of "
                                              f"{', '.join(STANDINGS)}")])  # fmt: skip
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        campaign = _campaign_row(connection, program.program_id, campaign_code)
        query = (
            select(coupons.c.id, coupons.c.code, coupons.c.owner_member_id, coupons.c.channel,
                   coupons.c.issued_at, coupons.c.uses, coupons.c.batch_id, members.c.card)
            .outerjoin(members, members.c.id == coupons.c.owner_member_id)
            .where(coupons.c.campaign_id == campaign.id, _standing_is(status, campaign.per_code))
            .order_by(coupons.c.id)
            .limit(limit + 1)
        )  # fmt: skip
        if after is not None:
            query = query.where(coupons.c.id > after)
        rows = connection.execute(query).all()
    kind = CampaignKind(campaign.kind)
    items = [_code_item(row, kind, campaign.per_code) for row in rows[:limit]]
    return {"items": items, "next": str(rows[limit - 1].id) if len(rows) > limit else None}


def _standing_is(status: str | None, per_code: int | None) -> Any:
    used = coupons.c.uses >= per_code if per_code is not None else false()
    if status == "used":
        return used
    if status == "issued":
        return and_(coupons.c.owner_member_id.is_not(None), ~used)
    if status == "available":
        return and_(coupons.c.owner_member_id.is_(None), ~used)
    return true()


def _standing(owner: int | None, uses: int, per_code: int | None) -> str:
    if per_code is not None and uses >= per_code:
        return "used"
    return "issued" if owner is not None else "available"


def _code_item(row: Any, kind: CampaignKind, per_code: int | None) -> dict[str, Any]:
    return {
        "code": _display(row.code, kind),
        "status": _standing(row.owner_member_id, row.uses, per_code),
        "owner": str(row.owner_member_id) if row.owner_member_id is not None else None,
        "card": row.card, "channel": row.channel,
        "issued_at": row.issued_at.isoformat() if row.issued_at else None,
        "uses": row.uses, "batch": str(row.batch_id) if row.batch_id is not None else None,
    }  # fmt: skip


def csv_text(items: Sequence[dict[str, Any]], *, header: bool) -> str:
    """Export items as CSV lines (`CSV_COLUMNS`), the header first when asked."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([item[key] for key in CSV_COLUMNS])
    return out.getvalue()


# — coupons —


def _display(code: str, kind: CampaignKind | str) -> str:
    """A unique code printed in groups (`7KXM-3HPR-4D`), a public one as it is."""
    return coupon_codes.shown(code) if CampaignKind(kind) is CampaignKind.UNIQUE else code


def _candidates(text: str) -> list[str]:
    """What `text` may name: a public code (case aside) and a unique code as people type
    it (look-alikes, dashes, spaces); a unique code whose check fails is a typo."""
    found = []
    stripped = text.strip()
    if PUBLIC_CODE.fullmatch(stripped):
        found.append(stripped.upper())
    typed = coupon_codes.typed(text) if len(text) <= 64 else None
    if typed is not None and coupon_codes.is_well_formed(typed) and typed not in found:
        found.append(typed)
    return found


COUPON_COLUMNS = (
    coupons.c.id.label("coupon_id"), coupons.c.code, coupons.c.owner_member_id,
    coupons.c.channel, coupons.c.issued_at, coupons.c.uses, coupons.c.campaign_id,
    coupon_campaigns.c.code.label("campaign_code"), coupon_campaigns.c.kind,
    coupon_campaigns.c.document, coupon_campaigns.c.uses.label("campaign_uses"),
    coupon_campaigns.c.discount.label("campaign_discount"), coupon_campaigns.c.per_code,
    coupons.c.valid_from.label("own_from"), coupons.c.valid_until.label("own_until"),
    coupons.c.revoked_at, coupons.c.source, coupons.c.source_purchase_id,
)  # fmt: skip


def own_window(row: Any) -> OwnWindow | None:
    """A personal coupon's own window (None for a code of a batch or a public code)."""
    if row.source_purchase_id is None:
        return None
    return OwnWindow(row.own_from, row.own_until, row.revoked_at)


def _coupon_rows(connection: Connection, program_id: int, codes: Sequence[str], *,
                 with_program: bool = False) -> list[Row[Any]]:  # fmt: skip
    """The coupons of these codes with their campaigns; `with_program`: and what
    `compiled` needs of the program's current version (its units read the campaigns)."""
    if not codes:
        return []
    return list(connection.execute(_coupons_query(program_id, codes, with_program)).all())


def _coupons_query(program_id: int, codes: Sequence[str], with_program: bool) -> Select[Any]:
    query = (
        select(*COUPON_COLUMNS)
        .join(coupon_campaigns, coupon_campaigns.c.id == coupons.c.campaign_id)
        .where(coupons.c.program_id == program_id, coupons.c.code.in_(codes))
    )
    if with_program:
        query = (
            query.add_columns(*CURRENT_VERSION_COLUMNS)
            .join(programs, programs.c.id == coupons.c.program_id)
            .join(program_versions, and_(program_versions.c.program_id == programs.c.id,
                                         program_versions.c.version == programs.c.current_version))
        )  # fmt: skip
    return query


def _pick(rows_by_code: dict[str, Row[Any]], text: str) -> Row[Any] | None:
    for candidate in _candidates(text):
        if candidate in rows_by_code:
            return rows_by_code[candidate]
    return None


def _find_coupon(connection: Connection, program_id: int, text: str) -> Row[Any]:
    rows = {row.code: row for row in _coupon_rows(connection, program_id, _candidates(text))}
    row = _pick(rows, text)
    if row is None:
        raise NotFound(f"coupon {text!r} does not exist")
    return row


def _coupon_json(row: Any, program: LoadedProgram, now: datetime) -> dict[str, Any]:
    campaign = _campaign_of(row, Units.of(program.calculator.program))
    per_code = campaign.limits.per_code
    return {
        "code": _display(row.code, row.kind), "campaign": row.campaign_code,
        "kind": row.kind,
        "status": coupon_status(campaign, row.owner_member_id, row.uses, now, own_window(row)),
        "owner": str(row.owner_member_id) if row.owner_member_id is not None else None,
        "channel": row.channel,
        "issued_at": row.issued_at.isoformat() if row.issued_at else None,
        "uses": row.uses, "uses_left": per_code - row.uses if per_code is not None else None,
        "valid": _valid(row), "effect": row.document["effect"],
        "conditions": row.document["conditions"],
        **({"given_by": row.source} if row.source else {}),
    }  # fmt: skip


def _valid(row: Any) -> Any:
    """The campaign's window, narrowed by a personal coupon's own."""
    valid = dict(row.document["valid"] or {})
    if row.source_purchase_id is None:
        return valid
    for key, own, narrower in (("from", row.own_from, max), ("until", row.own_until, min)):
        campaign = valid.get(key)
        if own is not None:
            ends = [own] + ([datetime.fromisoformat(campaign)] if campaign else [])
            valid[key] = narrower(ends).isoformat()
    return valid


def read_coupon(engine: Engine, program_code: str, code: str, *, now: datetime) -> dict[str, Any]:
    """A coupon by its code as people type it: status, campaign, owner, uses."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        return _coupon_json(_find_coupon(connection, program.program_id, code), program, now)


def issue_coupon(
    engine: Engine, program_code: str, code: str, data: object, *, now: datetime,
    idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """Give a unique campaign's coupon to a member `{member, channel}`. Issuing it again to
    its owner (a resend) records the new channel; another member's coupon, a used one or
    one of an ended campaign is `409 conflict`."""
    problems: list[Problem] = []
    body = Reader(data, "", problems, ("member", "channel"))
    member_ref = body.text("member", required=True)
    channel = body.text("channel", required=True)
    if channel is not None and channel not in CHANNELS:
        body.report("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    if problems:
        raise InvalidInput(problems)
    assert member_ref is not None
    assert channel is not None

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        row = _find_coupon(connection, program.program_id, code)
        _refuse_to_give(row, program, now)
        member = _active_member(connection, program.program_id, member_ref, "member")
        if row.owner_member_id not in (None, member.id):
            raise Conflict(f"coupon {code} was issued to another member")
        owner = coupons.c.owner_member_id
        changed = connection.execute(
            update(coupons)
            .where(coupons.c.id == row.coupon_id, or_(owner.is_(None), owner == member.id))
            .values(owner_member_id=member.id, channel=channel,
                    issued_at=row.issued_at or now)
        ).rowcount  # fmt: skip
        if not changed:  # issued to someone else meanwhile
            raise Conflict(f"coupon {code} was issued to another member")
        answer = _coupon_json(_find_coupon(connection, program.program_id, row.code), program,
                              now)  # fmt: skip
        _note_sending(connection, program.program_id, member.id, row.coupon_id, answer,
                      resend=row.owner_member_id is not None, now=now)  # fmt: skip
        return answer, row.owner_member_id is None

    request = {"coupon": code, "body": data}
    return idempotent(engine, program_code, idempotency_key, "coupon.issue", request, now,
                      followed(attempt, after))  # fmt: skip


def _note_sending(
    connection: Connection, program_id: int, member_id: int, coupon_id: int,
    coupon: dict[str, Any], *, resend: bool, now: datetime,
) -> None:  # fmt: skip
    """A `coupon.issued` event in the member's events: what a messaging integration reads
    to send the code by its channel (Kopilka sends no SMS or mail itself). Issuing the
    same coupon twice at one moment (a retried request) notes it once."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(events)
        .values(program_id=program_id, member_id=member_id, kind="coupon.issued",
                occasion=f"{coupon_id}:{now.isoformat()}", occurred_at=now,
                data={"coupon": coupon["code"], "campaign": coupon["campaign"],
                      "channel": coupon.get("channel"), "resend": resend})
        .on_conflict_do_nothing(index_elements=["member_id", "kind", "occasion"])
    )  # fmt: skip


def _refuse_to_give(row: Any, program: LoadedProgram, now: datetime) -> None:
    """Only a unique campaign's coupon with a use left, before its campaign ends, is
    issued or gifted."""
    if row.kind != CampaignKind.UNIQUE.value:
        raise Conflict(f"{row.code} is a public code: it is given out as it is, not issued")
    campaign = _campaign_of(row, Units.of(program.calculator.program))
    status = coupon_status(campaign, row.owner_member_id, row.uses, now, own_window(row))
    if status == "used" or (status == "expired" and campaign.valid_until is not None
                            and now >= campaign.valid_until):  # fmt: skip
        raise Conflict(f"coupon {_display(row.code, row.kind)} is {status}")


def _active_member(connection: Connection, program_id: int, ref: str, loc: str) -> Row[Any]:
    member = find_member(connection, program_id, ref)
    if member.status != "active":
        raise Conflict(f"{loc} {ref!r} is {member.status}")
    return member


def gift_coupon(
    engine: Engine, program_code: str, code: str, data: object, *, actor: str, now: datetime,
    idempotency_key: str | None = None,
) -> Answer:  # fmt: skip
    """`{from, to}`: a member gives their unused coupon to another member."""
    problems: list[Problem] = []
    body = Reader(data, "", problems, ("from", "to"))
    giver_ref, taker_ref = body.text("from", required=True), body.text("to", required=True)
    if problems:
        raise InvalidInput(problems)
    assert giver_ref is not None
    assert taker_ref is not None

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        row = _find_coupon(connection, program.program_id, code)
        _refuse_to_give(row, program, now)
        giver = find_member(connection, program.program_id, giver_ref)
        taker = _active_member(connection, program.program_id, taker_ref, "to")
        if giver.id == taker.id:
            raise InvalidInput([Problem("to", "is the member who gives it")])
        if row.owner_member_id != giver.id:
            raise Conflict(f"coupon {code} is not {giver_ref}'s to give")
        if row.uses:
            raise Conflict(f"coupon {code} was used: only an unused coupon is given")
        changed = connection.execute(
            update(coupons)
            .where(coupons.c.id == row.coupon_id, coupons.c.owner_member_id == giver.id,
                   coupons.c.uses == 0)
            .values(owner_member_id=taker.id)
        ).rowcount  # fmt: skip
        if not changed:  # used or given meanwhile
            raise Conflict(f"coupon {code} was used or given meanwhile")
        connection.execute(insert(coupon_gifts).values(
            program_id=program.program_id, coupon_id=row.coupon_id, from_member_id=giver.id,
            to_member_id=taker.id, actor=actor, created_at=now))  # fmt: skip
        return _coupon_json(_find_coupon(connection, program.program_id, row.code), program,
                            now), True  # fmt: skip

    request = {"coupon": code, "body": data}
    return idempotent(engine, program_code, idempotency_key, "coupon.gift", request, now,
                      attempt)  # fmt: skip


def member_coupons(
    engine: Engine, program_code: str, member_ref: str, *, now: datetime,
    before: int | None = None, limit: int = 50,
) -> dict[str, Any]:  # fmt: skip
    """The coupons a member holds, the latest made first; `next` is the next page's
    `before`."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        query = (
            select(*COUPON_COLUMNS)
            .join(coupon_campaigns, coupon_campaigns.c.id == coupons.c.campaign_id)
            .where(coupons.c.owner_member_id == member.id)
        )

        def item(row: Any) -> dict[str, Any]:
            return {"id": str(row.coupon_id), **_coupon_json(row, program, now)}

        return newest_first(connection, query, coupons.c.id, before=before, limit=limit,
                            item=item)  # fmt: skip


# — in a purchase (the caller's transaction) —


def load_coupons(
    connection: Connection, program_id: int, codes: Sequence[str], member_id: int | None
) -> list[CouponState | None]:
    """What the database knows of each code sent (None: no such code in the program).
    Codes are read as people type them; a public code matches whatever its case. One
    round trip: the coupons, and the member's redemptions in their campaigns."""
    wanted = sorted({candidate for code in codes for candidate in _candidates(code)})
    if not wanted:
        return [None] * len(codes)
    statements: list[Select[Any] | Update | Insert] = [_coupons_query(program_id, wanted, True)]
    if member_id is not None:
        campaigns = select(coupons.c.campaign_id).where(coupons.c.program_id == program_id,
                                                        coupons.c.code.in_(wanted))  # fmt: skip
        statements.append(_member_uses_query(member_id, campaigns))
    rows, *counted = rows_together(connection, statements)
    if not rows:
        return [None] * len(codes)
    by_code = {row.code: row for row in rows}
    units = Units.of(compiled(connection, rows[0]).calculator.program)
    used = {int(row.campaign_id): int(row.uses) for row in (counted[0] if counted else [])}
    states: list[CouponState | None] = []
    for code in codes:
        row = _pick(by_code, code)
        if row is None:
            states.append(None)
            continue
        campaign = _campaign_of(row, units)
        states.append(CouponState(
            row.coupon_id, row.code, campaign, row.owner_member_id, row.uses,
            used.get(row.campaign_id, 0), row.campaign_uses, row.campaign_discount,
            _standing(row.owner_member_id, row.uses, row.per_code),
            campaign_id=row.campaign_id, own=own_window(row)))  # fmt: skip
    return states


def _member_uses_query(member_id: int, campaign_ids: Any) -> Select[Any]:
    """The member's redemptions (not given back) per campaign of `campaign_ids` (ids, or a
    query of them), as `campaign_id, uses`."""
    r = coupon_redemptions.c
    return (
        select(r.campaign_id, func.count().label("uses"))
        .where(r.member_id == member_id, r.campaign_id.in_(campaign_ids), r.returned_at.is_(None))
        .group_by(r.campaign_id)
    )


def redeem_coupons(
    connection: Connection, program_id: int, purchase_id: int, member_id: int | None,
    applied: Sequence[tuple[CouponCheck, int, int]], now: datetime,
) -> None:  # fmt: skip
    """Take the coupons applied to a purchase: `(check, discount money minor units,
    points minor units)` each. Every count is moved by a conditional UPDATE — the
    campaign's totals under its `total` and `budget`, then each code's uses under its
    `per_code` and only by its owner — so a lost race raises `CouponInvalid` (`used`,
    `limit_reached` or `not_yours`) and the whole purchase rolls back. Campaign rows are
    taken before code rows, each in id order, so two purchases never wait on each other
    in a circle. All of it goes out in one round trip (`rows_together`): the outcomes
    are read once it is back, and any refusal rolls back what went with it."""
    if not applied:
        return
    _refuse_twice(applied)
    by_campaign: dict[int, list[tuple[CouponCheck, int, int]]] = defaultdict(list)
    for entry in applied:
        by_campaign[_state(entry[0]).campaign_id].append(entry)
    campaigns = sorted(by_campaign)
    limited = {c for c in campaigns if _state(by_campaign[c][0][0]).campaign.limits.per_member
               is not None} if member_id is not None else set()  # fmt: skip
    taking = sorted(applied, key=lambda entry: _id(entry[0]))
    statements: list[Select[Any] | Update | Insert] = [
        _take_from_campaign(c, by_campaign[c]) for c in campaigns
    ]
    if limited:  # counted once the campaigns' rows are held: a concurrent purchase counts too
        assert member_id is not None
        statements.append(_member_uses_query(member_id, sorted(limited)))
    statements += [_take_code(_state(check), member_id) for check, _, _ in taking]
    statements.append(insert(coupon_redemptions).values([
        {"program_id": program_id, "coupon_id": _id(check),
         "campaign_id": _state(check).campaign_id, "purchase_id": purchase_id,
         "member_id": member_id, "discount": discount, "points": points, "created_at": now}
        for check, discount, points in applied
    ]))  # fmt: skip
    outcomes = rows_together(connection, statements)  # in the order of `statements`
    spent, outcomes = outcomes[: len(campaigns)], outcomes[len(campaigns) :]
    for campaign_id, taken in zip(campaigns, spent, strict=True):
        _refuse_a_campaign_spent(by_campaign[campaign_id], taken)
    if limited:
        counted, *outcomes = outcomes
        uses = {int(row.campaign_id): int(row.uses) for row in counted}
        for campaign_id in sorted(limited):
            _refuse_past_per_member(by_campaign[campaign_id], uses.get(campaign_id, 0))
    for (check, _, _), taken in zip(taking, outcomes[: len(taking)], strict=True):
        if not taken:
            _refuse_a_code_not_taken(connection, check)


def _id(check: CouponCheck) -> int:
    assert check.coupon_id is not None  # `_refuse_twice` refused any check without one
    return check.coupon_id


def _state(check: CouponCheck) -> CouponState:
    assert check.state is not None  # a coupon that applies carries what it was checked against
    return check.state


def _refuse_twice(applied: Sequence[tuple[CouponCheck, int, int]]) -> None:
    counts = Counter(check.coupon_id for check, _, _ in applied)
    for check, _, _ in applied:
        if check.coupon_id is None:
            raise CouponInvalid(f"coupon {check.code!r} does not apply: {check.detail}",
                                coupon=check.code, reason=check.reason or "not_found")  # fmt: skip
        if counts[check.coupon_id] > 1:
            raise CouponInvalid(f"coupon {check.code!r} is on the receipt twice",
                                coupon=check.code, reason="used")  # fmt: skip


def _take_from_campaign(campaign_id: int, entries: list[tuple[CouponCheck, int, int]]) -> Update:
    """The campaign's totals moved by its `entries`, if its `total` and `budget` allow."""
    count = len(entries)
    discount = sum(entry[1] for entry in entries)
    points = sum(entry[2] for entry in entries)
    c = coupon_campaigns.c
    return (
        update(coupon_campaigns)
        .where(c.id == campaign_id,
               or_(c.total.is_(None), c.uses + count <= c.total),
               or_(c.budget.is_(None), c.discount + discount <= c.budget))
        .values(uses=c.uses + count, discount=c.discount + discount, points=c.points + points)
        .returning(c.id)
    )  # fmt: skip


def _refuse_a_campaign_spent(entries: list[tuple[CouponCheck, int, int]], taken: list[Any]) -> None:
    if not taken:
        code = entries[0][0].code
        raise CouponInvalid(f"coupon {code!r}: the campaign's redemptions or budget ran out",
                            coupon=code, reason="limit_reached")  # fmt: skip


def _refuse_past_per_member(entries: list[tuple[CouponCheck, int, int]], earlier: int) -> None:
    per_member = _state(entries[0][0]).campaign.limits.per_member
    if per_member is not None and earlier + len(entries) > per_member:
        code = entries[0][0].code
        raise CouponInvalid(f"coupon {code!r}: the member has used the campaign's "
                            f"{per_member} per member", coupon=code,
                            reason="limit_reached")  # fmt: skip


def _take_code(state: CouponState, member_id: int | None) -> Update:
    """One more use of the code, if it has one left and is the member's to use."""
    c = coupons.c
    owned = c.owner_member_id == member_id if member_id is not None else false()
    mine = owned if state.campaign.issued_only else or_(c.owner_member_id.is_(None), owned)
    conditions = [c.id == state.coupon_id, mine]
    per_code = state.campaign.limits.per_code
    if per_code is not None:
        conditions.append(c.uses < per_code)
    return update(coupons).where(*conditions).values(uses=c.uses + 1).returning(c.id)


def _refuse_a_code_not_taken(connection: Connection, check: CouponCheck) -> NoReturn:
    """Why the code's use was refused: no use left, or another member's."""
    state, code = _state(check), check.code
    uses = connection.execute(select(coupons.c.uses).where(coupons.c.id == state.coupon_id))
    per_code = state.campaign.limits.per_code
    if per_code is not None and uses.scalar_one() >= per_code:
        raise CouponInvalid(f"coupon {code!r} was used", coupon=code, reason="used")
    raise CouponInvalid(f"coupon {code!r} is another member's", coupon=code, reason="not_yours")


def give_back_coupons(
    connection: Connection, program_id: int, purchase_id: int, now: datetime
) -> list[str]:
    """On a whole refund or a cancelled hold: the purchase's redemptions are marked
    returned and their uses and campaign totals restored; the codes given back (as
    printed). Again for the same purchase: nothing more, an empty list."""
    r = coupon_redemptions.c
    returned = connection.execute(
        update(coupon_redemptions)
        .where(r.purchase_id == purchase_id, r.program_id == program_id, r.returned_at.is_(None))
        .values(returned_at=now)
        .returning(r.coupon_id, r.campaign_id, r.discount, r.points)
    ).all()  # fmt: skip
    if not returned:
        return []
    by_campaign: dict[int, list[Any]] = defaultdict(list)
    for row in returned:
        by_campaign[row.campaign_id].append(row)
    c = coupon_campaigns.c
    for campaign_id in sorted(by_campaign):
        rows = by_campaign[campaign_id]
        connection.execute(
            update(coupon_campaigns).where(c.id == campaign_id)
            .values(uses=c.uses - len(rows), discount=c.discount - sum(x.discount for x in rows),
                    points=c.points - sum(x.points for x in rows))
        )  # fmt: skip
    ids = sorted(row.coupon_id for row in returned)
    connection.execute(
        update(coupons).where(coupons.c.id == bindparam("coupon")).values(uses=coupons.c.uses - 1),
        [{"coupon": coupon_id} for coupon_id in ids],
    )
    shown = connection.execute(
        select(coupons.c.code, coupon_campaigns.c.kind)
        .join(coupon_campaigns, coupon_campaigns.c.id == coupons.c.campaign_id)
        .where(coupons.c.id.in_(ids)).order_by(coupons.c.id)
    ).all()  # fmt: skip
    return [_display(row.code, row.kind) for row in shown]


# — personal coupons the purchase's mechanics give (a stamp card's reward, a bounce-back) —

REWARD_BITS = 60  # a code made inside a purchase's write cannot be drawn again: no clash
PERSONAL_COLUMNS = ("program_id", "campaign_id", "code", "owner_member_id", "channel",
                    "issued_at", "uses", "valid_from", "valid_until", "source")  # fmt: skip
_rng = secrets.SystemRandom()
# a campaign's id and kind never change: known once per database (engine) and process, a
# purchase that gives one of its coupons reads nothing for it after the first
_campaigns_known: WeakKeyDictionary[Engine, dict[tuple[int, str], tuple[int, str]]] = (
    WeakKeyDictionary()
)


def personal_coupons(
    connection: Connection, program: LoadedProgram, member_id: int,
    wanted: Sequence[CouponWanted], now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """The coupon rows a purchase gives (written with it: `source_purchase_id` is its id)
    and what its answer says of each. A campaign that is not the program's, or whose
    codes are not personal (a public code), gives nothing: the answer says why."""
    known = _campaigns(connection, program.program_id, {want.campaign for want in wanted})
    rows, answers = [], []
    for want in wanted:
        campaign = known.get(want.campaign)
        if campaign is None or campaign[1] != CampaignKind.UNIQUE.value:
            why = "no such campaign" if campaign is None else "its codes are public, not personal"
            answers.append({"campaign": want.campaign, "reason": want.reason,
                            "given": False, "detail": f"no coupon given: {why}"})  # fmt: skip
            continue
        code = coupon_codes.new_code(_rng, bits=REWARD_BITS)
        rows.append({"program_id": program.program_id, "campaign_id": campaign[0], "code": code,
                     "owner_member_id": member_id, "channel": "pos", "issued_at": now,
                     "uses": 0, "valid_from": want.valid_from, "valid_until": want.valid_until,
                     "source": want.mechanic})  # fmt: skip
        answers.append({"campaign": want.campaign, "reason": want.reason, "given": True,
                        "code": coupon_codes.shown(code),
                        "valid_from": _iso(want.valid_from),
                        "valid_until": _iso(want.valid_until)})  # fmt: skip
    return rows, answers


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _campaigns(
    connection: Connection, program_id: int, codes: set[str]
) -> dict[str, tuple[int, str]]:
    known = _campaigns_known.setdefault(connection.engine, {})
    missing = sorted(code for code in codes if (program_id, code) not in known)
    if missing:
        c = coupon_campaigns.c
        for row in connection.execute(
            select(c.id, c.code, c.kind).where(c.program_id == program_id, c.code.in_(missing))
        ).all():
            known[(program_id, row.code)] = (int(row.id), row.kind)
    return {code: known[(program_id, code)] for code in codes
            if (program_id, code) in known}  # fmt: skip


def given_by(connection: Connection, purchase_id: int) -> list[str]:
    """The mechanics whose personal coupons a purchase gave and are neither used nor
    revoked yet."""
    c = coupons.c
    return list(connection.execute(
        select(c.source).distinct()
        .where(c.source_purchase_id == purchase_id, c.uses == 0, c.revoked_at.is_(None))
    ).scalars())  # fmt: skip


def revoke_given(
    connection: Connection, purchase_id: int, sources: Sequence[str], now: datetime
) -> list[tuple[str, str]]:
    """The unused personal coupons the mechanics `sources` gave with a purchase, revoked
    (its refund undoes what earned them); a coupon already used stays as it is. Their
    codes, as printed, with the mechanic that gave each."""
    if not sources:
        return []
    c = coupons.c
    rows = connection.execute(
        update(coupons)
        .where(c.source_purchase_id == purchase_id, c.source.in_(list(sources)), c.uses == 0,
               c.revoked_at.is_(None))
        .values(revoked_at=now).returning(c.code, c.source)
    ).all()  # fmt: skip
    return sorted((coupon_codes.shown(row.code), row.source) for row in rows)
