"""The referrals' state as stored, and its queries (in the caller's transaction): codes,
fingerprints, the facts a verdict needs, the referrals' rows and their counts by status.
No query here runs on a purchase's hot path: a purchase only adds to
`referral_fingerprints` in its own write (`fingerprint_bumps`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from kopilka.kernel.errors import Conflict
from kopilka.mechanics.referrals.model import (
    Identity,
    Kind,
    ReviewThresholds,
    Status,
    identities,
    new_code,
)
from kopilka.mechanics.referrals.tables import (
    FINGERPRINTS,
    referral_codes,
    referral_decisions,
    referral_fingerprints,
    referrals,
)
from kopilka.platform.statements import Bump, add_to_totals
from kopilka.platform.tables import member_profiles, members, purchases

# a purchase that happened: done, whether or not refunded since (a held one is not yet)
DONE = ("completed", "partially_refunded", "refunded")
CODE_ATTEMPTS = 8  # a clash of two random codes is ~10^-9 per member; eight is plenty
MAX_CHAIN_WALK = 100  # accounts a chain walk looks at, each way: enough to see a ring


# — codes —


def code_of(connection: Connection, member_id: int) -> str | None:
    query = select(referral_codes.c.code).where(referral_codes.c.member_id == member_id)
    code: str | None = connection.execute(query).scalar_one_or_none()
    return code


def ensure_code(connection: Connection, program_id: int, member_id: int, now: datetime) -> str:
    """The member's code, made now if they have none (a random one, unique per program)."""
    found = code_of(connection, member_id)
    if found is not None:
        return found
    for _ in range(CODE_ATTEMPTS):
        code = new_code()
        taken = select(referral_codes.c.member_id).where(
            referral_codes.c.program_id == program_id, referral_codes.c.code == code
        )
        if connection.execute(taken).first() is None:
            connection.execute(
                insert(referral_codes).values(
                    member_id=member_id, program_id=program_id, code=code, created_at=now
                )
            )
            return code
    raise Conflict("no free referral code was found; send the request again")


def owner_of_code(connection: Connection, program_id: int, code: str) -> Any:
    """The member whose code `code` is (normalised), with their status; None if nobody's."""
    query = (
        select(members.c.id, members.c.status)
        .join(referral_codes, referral_codes.c.member_id == members.c.id)
        .where(referral_codes.c.program_id == program_id, referral_codes.c.code == code)
    )
    return connection.execute(query).one_or_none()


# — fingerprints —


def fingerprint_bumps(program_id: int, member_id: int, found: Iterable[Identity]) -> list[Bump]:
    """Each identity seen once more for the member: a running total, added to in the
    write of whatever saw it (a purchase's own statement, a registration)."""
    return [
        Bump(FINGERPRINTS, (program_id, kind.value, value, member_id), (1,))
        for kind, value in sorted(found, key=lambda item: (item[0].value, item[1]))
    ]


def add_fingerprints(
    connection: Connection, program_id: int, member_id: int, found: Iterable[Identity]
) -> None:
    add_to_totals(connection, fingerprint_bumps(program_id, member_id, found))


def fingerprints_of(connection: Connection, member_ids: Iterable[int]) -> dict[int, set[Identity]]:
    ids = sorted(set(member_ids))
    found: dict[int, set[Identity]] = {member_id: set() for member_id in ids}
    if not ids:
        return found
    f = referral_fingerprints.c
    query = select(f.member_id, f.kind, f.value).where(f.member_id.in_(ids))
    for member_id, kind, value in connection.execute(query):
        found[member_id].add((Kind(kind), value))
    return found


def profile_identities(connection: Connection, member_id: int) -> set[Identity]:
    """The member's identities as their profile has them now (phone, email, card)."""
    query = (
        select(members.c.card, member_profiles.c.phone, member_profiles.c.email)
        .outerjoin(member_profiles, member_profiles.c.member_id == members.c.id)
        .where(members.c.id == member_id)
    )
    row = connection.execute(query).one()
    return identities(phone=row.phone, email=row.email, card=row.card)


def earlier_accounts(connection: Connection, program_id: int, friend_id: int) -> dict[Kind, int]:
    """How many accounts registered before the friend share each of the friend's phone,
    email and device fingerprints (the friend's own, as seen at registration and since)."""
    own = referral_fingerprints.alias("own")
    other = referral_fingerprints.alias("other")
    query = (
        select(own.c.kind, func.count(func.distinct(other.c.member_id)))
        .join(
            other,
            and_(
                other.c.program_id == own.c.program_id,
                other.c.kind == own.c.kind,
                other.c.value == own.c.value,
            ),
        )
        .where(
            own.c.program_id == program_id,
            own.c.member_id == friend_id,
            other.c.member_id < friend_id,
            own.c.kind.in_((Kind.PHONE.value, Kind.EMAIL.value, Kind.DEVICE.value)),
        )
        .group_by(own.c.kind)
    )
    return {Kind(kind): int(count) for kind, count in connection.execute(query)}


# — chains of young accounts —


def young_chain(
    connection: Connection,
    referrer_id: int,
    friend_id: int,
    friend_registered: datetime,
    review: ReviewThresholds,
) -> list[int]:
    """The young accounts linked to the friend by referrals, the friend first: the
    referrer and their referrers upwards, the friend's referred and theirs downwards,
    each registered within `young_days` of the friend."""
    young = timedelta(days=review.young_days)
    low, high = friend_registered - young, friend_registered + young
    chain = [friend_id]
    current: int | None = referrer_id
    while current is not None and current not in chain and len(chain) < MAX_CHAIN_WALK:
        row = connection.execute(
            select(members.c.created_at, members.c.referrer_id).where(members.c.id == current)
        ).one()
        if not low <= row.created_at <= high:
            break
        chain.append(current)
        current = row.referrer_id
    frontier = [friend_id]
    below: list[int] = []
    while frontier and len(below) < MAX_CHAIN_WALK:
        found = (
            connection.execute(
                select(members.c.id)
                .where(members.c.referrer_id.in_(frontier), members.c.created_at.between(low, high))
                .order_by(members.c.id)
                .limit(MAX_CHAIN_WALK)
            )
            .scalars()
            .all()
        )
        frontier = [member_id for member_id in found if member_id not in chain + below]
        below += frontier
    return chain + below


# — what the limits count —


def paid_counts(
    connection: Connection, referrer_id: int, since: datetime | None
) -> tuple[int, int]:
    """The referrer's referrals paid ever, and since `since` (0 when no period counts)."""
    r = referrals.c
    paid = and_(r.referrer_id == referrer_id, r.status == Status.PAID.value)
    total = connection.execute(select(func.count()).where(paid)).scalar_one()
    if since is None:
        return int(total), 0
    recent = connection.execute(select(func.count()).where(paid, r.paid_at >= since)).scalar_one()
    return int(total), int(recent)


# — the friend's first purchase —


def first_purchase_query(friend: Any, least_paid: int) -> Any:
    """The id of the friend's first done purchase that paid at least `least_paid` money."""
    p = purchases.alias("first")  # apart from a `purchases` the outer query joins
    return (
        select(p.c.id)
        .where(
            p.c.member_id == friend,
            p.c.status.in_(DONE),
            func.coalesce(p.c.paid, 0) >= least_paid,
        )
        .order_by(p.c.created_at, p.c.id)
        .limit(1)
        .correlate_except(p)
        .scalar_subquery()
    )


def due_referrals(
    connection: Connection, program_id: int, least_paid: int, stood_since: datetime
) -> list[int]:
    """Waiting referrals whose friend's first qualifying purchase has stood long enough
    (made before `stood_since`) or was refunded: what the worker judges now."""
    first = first_purchase_query(referrals.c.friend_id, least_paid)
    query = (
        select(referrals.c.id)
        .select_from(referrals)
        .join(purchases, purchases.c.id == first)
        .where(
            referrals.c.program_id == program_id,
            referrals.c.status == Status.WAITING.value,
            (purchases.c.status != "completed") | (purchases.c.created_at <= stood_since),
        )
        .order_by(referrals.c.id)
    )
    return [int(referral_id) for referral_id in connection.execute(query).scalars()]


def first_purchase(connection: Connection, friend_id: int, least_paid: int) -> Any:
    first = first_purchase_query(friend_id, least_paid)
    query = select(purchases.c.id, purchases.c.status, purchases.c.created_at).where(
        purchases.c.id == first
    )
    return connection.execute(query).one_or_none()


# — the referrals' rows —


def lock_referral(connection: Connection, program_id: int, referral_id: int) -> Any:
    """The referral's row, locked until commit (PostgreSQL; SQLite has one writer)."""
    query = (
        select(referrals, members.c.created_at.label("friend_registered"))
        .join(members, members.c.id == referrals.c.friend_id)
        .where(referrals.c.id == referral_id, referrals.c.program_id == program_id)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=referrals)
    return connection.execute(query).one_or_none()


def member_status(connection: Connection, member_id: int) -> str:
    status: str = connection.execute(
        select(members.c.status).where(members.c.id == member_id)
    ).scalar_one()
    return status


def insert_referral(connection: Connection, values: dict[str, Any]) -> int:
    """A new referral (its friend is a member being registered: referred once)."""
    statement = insert(referrals).values(**values).returning(referrals.c.id)
    return int(connection.execute(statement).scalar_one())


def change_referral(connection: Connection, referral_id: int, **values: Any) -> None:
    connection.execute(update(referrals).where(referrals.c.id == referral_id).values(**values))


def record_decision(
    connection: Connection,
    *,
    program_id: int,
    referral_id: int,
    action: str,
    status: Status,
    reasons: Iterable[str],
    actor: str,
    at: datetime,
    note: str | None = None,
) -> None:
    connection.execute(
        insert(referral_decisions).values(
            program_id=program_id,
            referral_id=referral_id,
            action=action,
            status=status.value,
            reasons=list(reasons),
            note=note,
            actor=actor,
            at=at,
        )
    )


def counts_by_status(connection: Connection, **where: int) -> dict[str, int]:
    """Referrals by status: of one referrer (`referrer_id=`) or of a program (`program_id=`)."""
    column, value = next(iter(where.items()))
    query = (
        select(referrals.c.status, func.count())
        .where(referrals.c[column] == value)
        .group_by(referrals.c.status)
    )
    found = {status: int(count) for status, count in connection.execute(query)}
    return {status.value: found.get(status.value, 0) for status in Status}


def points_paid(connection: Connection, **where: int) -> int:
    column, value = next(iter(where.items()))
    r = referrals.c
    query = select(
        func.coalesce(func.sum(r.referrer_points), 0), func.coalesce(func.sum(r.friend_points), 0)
    ).where(r[column] == value)
    referrer, friend = connection.execute(query).one()
    return int(referrer) + int(friend)


def points_earned_as_referrer(connection: Connection, referrer_id: int) -> int:
    query = select(func.coalesce(func.sum(referrals.c.referrer_points), 0)).where(
        referrals.c.referrer_id == referrer_id
    )
    return int(connection.execute(query).scalar_one())


def codes_made(connection: Connection, program_id: int) -> int:
    query = select(func.count()).where(referral_codes.c.program_id == program_id)
    return int(connection.execute(query).scalar_one())


def referral_rows(
    connection: Connection,
    program_id: int,
    *,
    status: str | None,
    before: int | None,
    limit: int,
    referral_id: int | None = None,
) -> list[Any]:
    """Referrals newest first, with both members' cards."""
    referrer = members.alias("referrer")
    friend = members.alias("friend")
    query = (
        select(
            referrals, referrer.c.card.label("referrer_card"), friend.c.card.label("friend_card")
        )
        .join(referrer, referrer.c.id == referrals.c.referrer_id)
        .join(friend, friend.c.id == referrals.c.friend_id)
        .where(referrals.c.program_id == program_id)
        .order_by(referrals.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(referrals.c.status == status)
    if before is not None:
        query = query.where(referrals.c.id < before)
    if referral_id is not None:
        query = query.where(referrals.c.id == referral_id)
    return list(connection.execute(query))


def decisions_of(connection: Connection, referral_id: int) -> list[Any]:
    d = referral_decisions.c
    query = (
        select(d.action, d.status, d.reasons, d.note, d.actor, d.at)
        .where(d.referral_id == referral_id)
        .order_by(d.id)
    )
    return list(connection.execute(query))
