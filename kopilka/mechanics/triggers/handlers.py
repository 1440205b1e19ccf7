"""Triggers: rewards (and resets) the program gives by itself, each once per occasion.

For every trigger of every program the worker finds the members whose occasion has come
— set-based, one query per trigger — and fires each in a transaction of its own: the
member's accounts are locked, the `trigger.<code>` event is inserted for the occasion
(`ON CONFLICT DO NOTHING`), and only if it went in are the points given (a ledger
transfer whose reason is `trigger` and whose note names the trigger) or, for an
`inactivity` reset, the balance burnt. The unique event is what makes a firing happen
exactly once, whatever runs at the same time (two workers, a rerun for the same moment).

Occasions (shared/API.md):
- `registration`, `profile_complete` (phone, email, name and birthday all set): once;
- `birthday`: once a year, from `days_before` the birthday (or the first run after),
  for members registered before that day;
- `inactivity`: `days` without a purchase (from registration for a member who never
  bought), once per spell — a purchase starts a new one;
- `check_point`: at least `min.purchases` purchases (or `min.spend`) in a calendar
  period, once per period;
- `purchase_number`: the member's `number`-th purchase, once.
Purchases count unless wholly refunded: a buy-and-return counts for nothing.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.kernel.periods import CalendarPeriod, period_start
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.triggers.model import Trigger, TriggerOccasion, triggers_of
from kopilka.members.standing import net_spend
from kopilka.platform.idempotency import retrying
from kopilka.platform.tables import events, member_profiles, members, programs, purchases
from kopilka.programs.handlers import LoadedProgram, load_program

Due = tuple[int, str]  # a member id and the occasion (an event's `occasion`)


def fire_triggers(engine: Engine, *, now: datetime, actor: str = "worker") -> int:
    """Fire every trigger whose occasion has come by `now`; how many fired."""
    with engine.connect() as connection:
        codes = connection.execute(select(programs.c.code)).scalars().all()
    fired = 0
    for code in codes:
        with engine.connect() as connection:
            program = load_program(connection, code)
            work = [(trigger, _due(connection, program, trigger, now))
                    for trigger in triggers_of(program.calculator.program)]  # fmt: skip
        for trigger, due in work:
            for member_id, occasion in due:
                fired += retrying(engine, partial(
                    _fire, program=program, trigger=trigger, member_id=member_id,
                    occasion=occasion, now=now, actor=actor))  # fmt: skip
    return fired


def _fire(
    connection: Connection, *, program: LoadedProgram, trigger: Trigger, member_id: int,
    occasion: str, now: datetime, actor: str,
) -> int:  # fmt: skip
    wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                         member_id, now)  # fmt: skip  # the member's accounts, locked
    reward = trigger.reward
    data: dict[str, Any] = {"trigger": trigger.code, "on": trigger.on.value}
    if reward is not None:
        data["points_minor"] = reward.points
    if not _record(connection, program.program_id, member_id, trigger, occasion, data, now):
        return 0  # fired already for this occasion
    key = f"{program.calculator.program.code}:trigger:{trigger.code}:{member_id}:{occasion}"
    if trigger.burn_all:
        wallet.burn_all(key + ":burn")
    if reward is not None:
        wallet.reward(key, reward.points, valid_days=reward.valid_days)
    wallet.flush(actor=actor, note=f"trigger {trigger.code}")
    return 1


def _record(
    connection: Connection, program_id: int, member_id: int, trigger: Trigger, occasion: str,
    data: dict[str, Any], now: datetime,
) -> bool:  # fmt: skip
    """Insert the firing's event unless it is there; whether it went in."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(events)
        .values(program_id=program_id, member_id=member_id, kind=f"trigger.{trigger.code}",
                occasion=occasion, data=data, occurred_at=now)
        .on_conflict_do_nothing(index_elements=["member_id", "kind", "occasion"])
        .returning(events.c.id)
    )  # fmt: skip
    return connection.execute(statement).first() is not None


# — who is due —


def _due(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> list[Due]:
    finder = {
        TriggerOccasion.REGISTRATION: _registered,
        TriggerOccasion.PROFILE_COMPLETE: _profile_complete,
        TriggerOccasion.BIRTHDAY: _birthday,
        TriggerOccasion.INACTIVITY: _inactive,
        TriggerOccasion.CHECK_POINT: _check_point,
        TriggerOccasion.PURCHASE_NUMBER: _purchase_number,
    }[trigger.on]
    return list(finder(connection, program, trigger, now))


def _active(program: LoadedProgram, now: datetime) -> Any:
    return and_(members.c.program_id == program.program_id, members.c.status == "active",
                members.c.created_at <= now)  # fmt: skip


def _not_fired(trigger: Trigger, occasion: Any = None, since: Any = None) -> Any:
    """No event of this trigger for the member (for `occasion`, or since `since`)."""
    condition = and_(events.c.member_id == members.c.id,
                     events.c.kind == f"trigger.{trigger.code}")  # fmt: skip
    if occasion is not None:
        condition = and_(condition, events.c.occasion == occasion)
    if since is not None:
        condition = and_(condition, events.c.occurred_at >= since)
    return ~exists(select(events.c.id).where(condition))


def _registered(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    query = select(members.c.id).where(_active(program, now), _not_fired(trigger, "once"))
    return ((member_id, "once") for member_id in connection.execute(query).scalars())


def _profile_complete(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    query = (
        select(members.c.id)
        .join(member_profiles, member_profiles.c.member_id == members.c.id)
        .where(_active(program, now), _not_fired(trigger, "once"),
               member_profiles.c.phone.is_not(None), member_profiles.c.email.is_not(None),
               member_profiles.c.name.is_not(None), member_profiles.c.birthday.is_not(None))
    )  # fmt: skip
    return ((member_id, "once") for member_id in connection.execute(query).scalars())


def _birthday(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    today = now.date()
    occasion = str(today.year)
    query = (
        select(members.c.id, members.c.created_at, member_profiles.c.birthday)
        .join(member_profiles, member_profiles.c.member_id == members.c.id)
        .where(_active(program, now), member_profiles.c.birthday.is_not(None),
               _not_fired(trigger, occasion))
    )  # fmt: skip
    for member_id, registered, born in connection.execute(query):
        day = _in_year(born, today.year) - timedelta(days=trigger.days_before)
        if day <= today and registered.date() <= day:
            yield member_id, occasion


def _in_year(born: date, year: int) -> date:
    """A birthday in `year`; 29 February is the 28th in other years."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def _counted_purchases(program: LoadedProgram) -> Any:
    """The member's purchases that count: done (not held, cancelled or timed out) and not
    wholly refunded."""
    return and_(
        purchases.c.program_id == program.program_id,
        purchases.c.member_id == members.c.id,
        purchases.c.status.in_(("completed", "partially_refunded")),
    )


def _inactive(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    assert trigger.days is not None
    last_purchase = (
        select(func.max(purchases.c.created_at))
        .where(purchases.c.member_id == members.c.id, purchases.c.created_at <= now)
        .scalar_subquery()
    )
    last = func.coalesce(last_purchase, members.c.created_at)
    query = (
        select(members.c.id, last.label("last"))
        .where(_active(program, now), last <= now - timedelta(days=trigger.days),
               _not_fired(trigger, since=last))
    )  # fmt: skip
    for member_id, since in connection.execute(query):
        yield member_id, _moment(since)


def _moment(value: Any) -> str:
    """A moment as an occasion: the same text from both databases."""
    if isinstance(value, str):  # SQLite hands back what it stored
        value = datetime.fromisoformat(value)
    return str(value.isoformat(timespec="seconds"))


def _check_point(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    start = period_start(
        trigger.period or CalendarPeriod.MONTH, now, program.calculator.program.timezone
    )
    zone = zoneinfo.ZoneInfo(program.calculator.program.timezone)
    occasion = start.astimezone(zone).date().isoformat()  # the period's first local day
    counted = and_(_counted_purchases(program), purchases.c.created_at >= start,
                   purchases.c.created_at <= now)  # fmt: skip
    count = select(func.count()).where(counted).scalar_subquery()
    conditions = [_active(program, now), _not_fired(trigger, occasion)]
    if trigger.min_purchases is not None:
        conditions.append(count >= trigger.min_purchases)
    if trigger.min_spend is not None:
        conditions.append(_spend(counted) >= trigger.min_spend)
    query = select(members.c.id).where(*conditions)
    return ((member_id, occasion) for member_id in connection.execute(query).scalars())


def _spend(counted: Any) -> Any:
    """What the member spent in the counted purchases, money minor units, net of refunds
    (as tiers count it: `kopilka.members.standing`)."""
    return select(func.coalesce(func.sum(net_spend()), 0)).where(counted).scalar_subquery()


def _purchase_number(
    connection: Connection, program: LoadedProgram, trigger: Trigger, now: datetime
) -> Iterable[Due]:
    assert trigger.number is not None
    occasion = str(trigger.number)
    count = (
        select(func.count())
        .where(_counted_purchases(program), purchases.c.created_at <= now)
        .scalar_subquery()
    )
    query = select(members.c.id).where(
        _active(program, now), _not_fired(trigger, occasion), count >= trigger.number
    )
    return ((member_id, occasion) for member_id in connection.execute(query).scalars())
