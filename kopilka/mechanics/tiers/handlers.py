"""Tiers over time: upgrades after a purchase, periodic reviews, tiers set by hand.

- `upgrade_after_purchase` runs in the purchase's transaction, after the purchase is
  written (the purchase itself was computed at the old tier). The member's standing in
  the window was read with the purchase's load (`standing_reads`, from the running
  totals per day): the purchase adds itself to it, and nothing more is read unless the
  tier changes (or a level's `bought` must be looked at). Nothing at all for a program
  without tiers.
- `review_tiers` (the worker's) holds each program's review once per member per review
  period (the start of the day/week/month/quarter/year in the program's time zone) and
  lowers who fell due at the end of a grace period. In batches of members, one
  transaction each: the members' accounts are taken first, as a purchase takes them, with
  `SKIP LOCKED` on PostgreSQL — two workers share the work and never apply a change
  twice (each member's state is read again once held; the history's `occasion` is unique).
- `set_tier`: an operator's tier `{tier, until?, reason}`, audited in the history.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    ScalarSelect,
    and_,
    bindparam,
    or_,
    select,
    update,
)

from kopilka.checkout.mechanic import Reads
from kopilka.kernel.errors import Conflict, InvalidInput, Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import Reader, parse_date
from kopilka.ledger.accounts import lock_members
from kopilka.mechanics.tiers.model import (
    Standing,
    TierLevel,
    TierSettings,
    TierState,
    is_upgrade,
    needs_bought,
    rank,
    review,
    review_moment,
    tenure_days,
    window_at_review,
    window_bounds,
)
from kopilka.mechanics.tiers.status import best_level, standing_at, tier_fields
from kopilka.mechanics.tiers.store import (
    Change,
    TierRow,
    Window,
    standings,
    tier_rows,
    write_change,
)
from kopilka.members.handlers import find_member
from kopilka.members.standing import days_between, window_query
from kopilka.platform.idempotency import retrying
from kopilka.platform.pages import newest_first
from kopilka.platform.tables import member_days, member_tiers, members, programs, tier_history
from kopilka.programs.handlers import LoadedProgram, load_program

BATCH_MEMBERS = 500
SET_KEYS = ("tier", "until", "reason")

__all__ = [
    "program_tiers",
    "review_tiers",
    "set_tier",
    "tier_history_of",
    "upgrade_after_purchase",
]


# — after a purchase —


def standing_reads(program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
    """The member's spend and purchases in the window as it stands before the purchase —
    read with the purchase's load (no round trip of its own), from the kept standing;
    None for a program without tiers."""
    rules = program.calculator.program
    settings = rules.tiers
    if settings is None:
        return None
    day_type = member_days.c.day.type
    query = window_query(member, bindparam("tiers_first", type_=day_type),
                         bindparam("tiers_last", type_=day_type))  # fmt: skip

    def parameters(now: datetime) -> dict[str, Any]:
        first, last = days_between(*window_bounds(settings.window, now, rules.timezone),
                                   rules.timezone)  # fmt: skip
        return {"tiers_first": first, "tiers_last": last}

    def facts(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        [(spend, count)] = rows[0]
        return {"window": (int(spend), int(count))}

    return Reads((query,), facts, parameters)


def upgrade_after_purchase(
    connection: Connection, program: LoadedProgram, member_id: int, now: datetime, *,
    member: Row[Any] | None = None, purchase_id: int | None = None, actor: str = "purchase",
    counted: tuple[int, int] | None = None,
) -> str | None:  # fmt: skip
    """Raise the member's tier if the purchase just written qualifies them for a higher
    level; the new tier's code, or None. `member`: the purchase's member row (with the
    stored `tier` and `created_at`), saving a query. `counted`: the member's (spend,
    purchases) in the window with the purchase, when already known (read with the
    purchase's load): then nothing is read unless the tier changes. The caller holds the
    member."""
    if member is None:
        member = _member_row(connection, member_id)
    due = _level_due(connection, program, member, now, counted)
    if due is None:
        return None
    settings, rules = program.calculator.program.tiers, program.calculator.program
    assert settings is not None
    level, standing = due
    # read again before changing it: on PostgreSQL the purchase's own read of the tier
    # may predate a change (a review, an operator) it waited on for the member's lock
    current = _member_row(connection, member_id).tier
    if not is_upgrade(settings, current, level):
        return None
    reason = f"qualifies ({_counted(level, standing, rules)})"
    if purchase_id is not None:
        reason += f" after purchase {purchase_id}"
    moment = review_moment(settings, now, rules.timezone)
    write_change(
        connection,
        Change(program.program_id, member_id, current, level.code, manual=False, until=None,
               reason=reason, actor=actor, at=now,
               occasion=f"purchase:{purchase_id}" if purchase_id is not None else None,
               purchase_id=purchase_id, reviewed_at=moment),
        exists=current is not None,
    )  # fmt: skip
    return level.code


def upgrade_due(
    connection: Connection, program: LoadedProgram, member: Row[Any], now: datetime,
    counted: tuple[int, int],
) -> bool:  # fmt: skip
    """Whether the purchase being written raises the member's tier — decided before it
    is written, from `counted` (the window with the purchase); True also when it can't
    be decided yet (a higher level's `bought` needs the purchase's own lines written)."""
    settings = program.calculator.program.tiers
    if settings is None:
        return False
    above = settings.levels[max(rank(settings, member.tier), 0) + 1 :]
    if any(needs_bought(level.qualify) for level in above):
        return True
    return _level_due(connection, program, member, now, counted) is not None


def _level_due(
    connection: Connection, program: LoadedProgram, member: Row[Any], now: datetime,
    counted: tuple[int, int] | None,
) -> tuple[TierLevel, Standing] | None:  # fmt: skip
    """The higher level the member qualifies for now (with what they had for it), or
    None: none, or the member is at the top already (nothing read then)."""
    rules = program.calculator.program
    settings = rules.tiers
    if settings is None:
        return None
    current: str | None = member.tier  # as the purchase saw it
    if rank(settings, current) >= len(settings.levels) - 1:
        return None
    if counted is None:
        standing, window = standing_at(connection, rules, member.id, member.created_at, now)
    else:
        window = window_bounds(settings.window, now, rules.timezone)
        standing = Standing(*counted, tenure_days(member.created_at, now))
    level, standing = best_level(connection, rules, member.id, standing, window,
                                 above=max(rank(settings, current), 0))  # fmt: skip
    if level is None or not is_upgrade(settings, current, level):
        return None
    return level, standing


def _member_row(connection: Connection, member_id: int) -> Row[Any]:
    return connection.execute(
        select(members.c.id, members.c.created_at, member_tiers.c.code.label("tier"))
        .outerjoin(member_tiers, member_tiers.c.member_id == members.c.id)
        .where(members.c.id == member_id)
    ).one()  # fmt: skip


def _counted(level: TierLevel, standing: Standing, program: Program) -> str:
    """What the member has that the level asks for, for the history: "spend 10250.00,
    purchases 12"."""
    q = level.qualify
    if q is None:
        return "the default level"
    parts = []
    if q.spend is not None:
        parts.append(f"spend {format_minor(standing.spend, program.money_digits)}")
    if q.purchases is not None:
        parts.append(f"purchases {standing.purchases}")
    if q.tenure_days is not None:
        parts.append(f"tenure {standing.tenure_days} days")
    if q.bought_skus is not None or q.bought_categories is not None:
        parts.append("bought")
    return ", ".join(parts)


# — reviews —


def review_tiers(
    engine: Engine, *, now: datetime, actor: str = "worker", batch: int = BATCH_MEMBERS
) -> int:
    """Hold the reviews due by `now` and lower whoever's grace period ended still
    unqualified; how many tiers changed. The same `now` again changes nothing."""
    with engine.connect() as connection:
        codes = connection.execute(select(programs.c.code).order_by(programs.c.id)).scalars().all()
    changed = 0
    for code in codes:
        with engine.connect() as connection:
            program = load_program(connection, code)
        settings = program.calculator.program.tiers
        if settings is None or not _anything_due(engine, program, settings, now):
            continue
        after = 0
        while True:
            last, count = retrying(engine, partial(
                _review_batch, program=program, settings=settings, now=now, actor=actor,
                after=after, limit=batch,
            ))  # fmt: skip
            changed += count
            if last is None:
                break
            after = last
    return changed


def _due(program: LoadedProgram, settings: TierSettings, now: datetime) -> Any:
    """The condition of a member due for the review held now or whose downgrade fell due
    (a member at the default level has nothing to lose: never due)."""
    moment = review_moment(settings, now, program.calculator.program.timezone)
    return and_(
        member_tiers.c.program_id == program.program_id,
        member_tiers.c.code != settings.levels[0].code,
        or_(member_tiers.c.reviewed_at.is_(None), member_tiers.c.reviewed_at < moment,
            member_tiers.c.downgrade_at <= now),
    )  # fmt: skip


def _anything_due(
    engine: Engine, program: LoadedProgram, settings: TierSettings, now: datetime
) -> bool:
    """Whether any member is due (over the indexes: most runs find no one and stop here)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(member_tiers.c.member_id).where(_due(program, settings, now)).limit(1)
        ).first()
    return found is not None


def _is_due(row: TierRow, moment: datetime, now: datetime) -> bool:
    return (row.reviewed_at is None or row.reviewed_at < moment) or (
        row.downgrade_at is not None and row.downgrade_at <= now
    )


def _review_batch(
    connection: Connection, *, program: LoadedProgram, settings: TierSettings, now: datetime,
    actor: str, after: int, limit: int,
) -> tuple[int | None, int]:  # fmt: skip
    """Review up to `limit` members after member `after`: the last member id looked at
    (None: no one is left) and how many tiers changed."""
    rules = program.calculator.program
    moment = review_moment(settings, now, rules.timezone)
    chosen = [
        int(member_id)
        for member_id in connection.execute(
            select(member_tiers.c.member_id)
            .where(_due(program, settings, now), member_tiers.c.member_id > after)
            .order_by(member_tiers.c.member_id)
            .limit(limit)
        ).scalars()
    ]  # fmt: skip
    if not chosen:
        return None, 0
    held = lock_members(connection, chosen)
    rows = [row for row in tier_rows(connection, held).values() if _is_due(row, moment, now)]
    if not rows:  # busy elsewhere, or reviewed by another worker meanwhile
        return chosen[-1], 0
    ids = [row.member_id for row in rows]
    joined = dict(
        connection.execute(select(members.c.id, members.c.created_at).where(members.c.id.in_(ids)))
        .tuples()
        .all()
    )
    at_review = window_at_review(settings.window, moment, rules.timezone)
    at_now = window_bounds(settings.window, now, rules.timezone)
    counted = standings(connection, ids, [at_review, at_now], rules.timezone)
    changed, marks = 0, []
    for row in sorted(rows, key=lambda row: row.member_id):
        reviewing = row.reviewed_at is None or row.reviewed_at < moment
        level = _qualified(
            connection, rules, row.member_id, joined[row.member_id], counted.get(row.member_id),
            (now, at_now), (moment, at_review),  # at a grace's end too: the same two windows
        )  # fmt: skip
        state = TierState(row.code, row.since, row.until, row.manual, row.downgrade_at)
        decision = review(settings, state, level, now=now, moment=moment if reviewing else None)
        reviewed = moment if reviewing else row.reviewed_at
        if decision.reason is not None and decision.code != row.code:
            occasion = (f"review:{moment.isoformat()}" if reviewing or row.downgrade_at is None
                        else f"grace:{row.downgrade_at.isoformat()}")  # fmt: skip
            write_change(
                connection,
                Change(program.program_id, row.member_id, row.code, decision.code,
                       manual=False, until=None, reason=decision.reason, actor=actor, at=now,
                       occasion=occasion, reviewed_at=reviewed),
                exists=True,
            )  # fmt: skip
            changed += 1
            continue
        marks.append({"member": row.member_id, "is_manual": decision.manual,
                      "manual_until": decision.until, "lower_at": decision.downgrade_at,
                      "reviewed": reviewed})  # fmt: skip
    if marks:
        connection.execute(
            update(member_tiers)
            .where(member_tiers.c.member_id == bindparam("member"))
            .values(manual=bindparam("is_manual"), until=bindparam("manual_until"),
                    downgrade_at=bindparam("lower_at"), reviewed_at=bindparam("reviewed")),
            marks,
        )  # fmt: skip
    return chosen[-1], changed


def _qualified(
    connection: Connection, rules: Program, member_id: int, joined: datetime,
    counted: list[tuple[int, int]] | None, at_now: tuple[datetime, Window],
    at_review: tuple[datetime, Window] | None,
) -> TierLevel:  # fmt: skip
    """The highest level the member qualifies for now — or, at a review, in the window
    that ended at the review if that is higher (a calendar window: the period just ended)."""
    (review_spend, review_count), (now_spend, now_count) = counted or [(0, 0), (0, 0)]
    end, window = at_now
    standing = Standing(now_spend, now_count, tenure_days(joined, end))
    level, _ = best_level(connection, rules, member_id, standing, window)
    if at_review is not None:
        end, window = at_review
        earlier, _ = best_level(connection, rules, member_id,
                                Standing(review_spend, review_count, tenure_days(joined, end)),
                                window)  # fmt: skip
        assert rules.tiers is not None
        if earlier is not None and (
            level is None or rank(rules.tiers, earlier.code) > rank(rules.tiers, level.code)
        ):
            level = earlier
    assert level is not None  # the default level always qualifies
    return level


# — by hand —


def set_tier(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Set a member's tier by hand: `{tier, until?, reason}`. `until` is a time, or a date
    (the tier holds through that day in the program's time zone); a review never lowers
    the tier before it, nor ever one set without it. Setting what is already set (the
    same tier, by hand, the same `until`) writes nothing."""
    problems: list[Problem] = []
    reader = Reader(body, "", problems, SET_KEYS)
    code = reader.code("tier", required=True)
    reason = reader.text("reason", required=True)
    until_raw = reader.raw("until")
    if until_raw is not None and _until_value(until_raw, "UTC") is None:
        reader.report("until", f"{until_raw!r} is not a date (YYYY-MM-DD) or a time with an "
                      "offset (2026-12-31T23:59:59+03:00)")  # fmt: skip
    if problems:
        raise InvalidInput(problems)
    assert code is not None
    assert reason is not None

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        rules = program.calculator.program
        settings = rules.tiers
        if settings is None:
            raise InvalidInput([Problem("tier", f"program {program_code} declares no tiers")])
        codes = [level.code for level in settings.levels]
        if code not in codes:
            raise InvalidInput([Problem("tier", f"{code!r} is not a tier of the program; "
                                                f"one of {', '.join(codes)}")])  # fmt: skip
        until = _until_value(until_raw, rules.timezone) if until_raw is not None else None
        if until is not None and until <= now:
            raise InvalidInput([Problem("until", f"{until.isoformat()} is not in the future")])
        member = find_member(connection, program.program_id, member_ref)
        if member.status == "erased":
            raise Conflict(f"member {member_ref!r} was erased")
        lock_members(connection, [member.id], skip=False)
        row = tier_rows(connection, [member.id]).get(member.id)
        if row is None or (row.code, row.manual, row.until) != (code, True, until):
            write_change(
                connection,
                Change(program.program_id, member.id, row.code if row else None, code,
                       manual=True, until=until, reason=reason, actor=actor, at=now,
                       reviewed_at=review_moment(settings, now, rules.timezone)),
                exists=row is not None,
            )  # fmt: skip
        return tier_fields(connection, rules, member.id, member.created_at, now)

    return retrying(engine, attempt)


_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def _until_value(raw: object, timezone: str) -> datetime | None:
    """`until` as a moment: a date means the end of that day in `timezone`; a time needs
    its offset."""
    day = parse_date(raw)
    if day is not None and not isinstance(raw, datetime):
        zone = zoneinfo.ZoneInfo(timezone)
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    if not isinstance(raw, str) or not _OFFSET.search(raw.strip()):
        return None
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        return None


# — reading —


def tier_history_of(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:  # fmt: skip
    """A member's tier changes, newest first; `next` is the `before` of the next page."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        return newest_first(
            connection, select(tier_history).where(tier_history.c.member_id == member.id),
            tier_history.c.id, before=before, limit=limit, item=_history_json,
        )  # fmt: skip


def _history_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id), "at": row.changed_at.isoformat(), "from": row.from_code,
        "to": row.to_code, "manual": row.manual,
        "until": row.until.isoformat() if row.until else None, "reason": row.reason,
        "actor": row.actor,
        "purchase_id": str(row.purchase_id) if row.purchase_id is not None else None,
    }  # fmt: skip


def program_tiers(engine: Engine, program_code: str) -> dict[str, Any]:
    """The program's levels as declared, with their thresholds and privileges."""
    with engine.connect() as connection:
        program = load_program(connection, program_code).calculator.program
    settings = program.tiers
    if settings is None:
        return {"window": None, "review": None, "grace_days": None, "levels": []}
    window = settings.window
    return {
        "window": {"period": window.period.value} if window.period else {"days": window.days},
        "review": settings.review.value,
        "grace_days": settings.grace_days,
        "levels": [_level_json(level, program.money_digits) for level in settings.levels],
    }


def _level_json(level: TierLevel, digits: int) -> dict[str, Any]:
    qualify: dict[str, Any] | None = None
    q = level.qualify
    if q is not None:
        qualify = {}
        if q.spend is not None:
            qualify["spend"] = format_minor(q.spend, digits)
        if q.purchases is not None:
            qualify["purchases"] = q.purchases
        if q.tenure_days is not None:
            qualify["tenure_days"] = q.tenure_days
        bought = {key: sorted(codes) for key, codes in (("skus", q.bought_skus),
                                                       ("categories", q.bought_categories))
                  if codes is not None}  # fmt: skip
        if bought:
            qualify["bought"] = bought
    return {"code": level.code, "name": level.name, "qualify": qualify,
            "privileges": list(level.privileges)}  # fmt: skip
