"""The clubs' rows: memberships (locked to change them), their events, expected renewals
and invite codes — the queries the use cases (`handlers`) and the worker share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, func, insert, or_, select, update

from kopilka.mechanics.clubs.model import Status
from kopilka.mechanics.clubs.tables import (
    club_events,
    club_invites,
    club_memberships,
    club_renewals,
)
from kopilka.platform.tables import members, programs

MEMBERSHIP = club_memberships.c
EVENT = club_events.c
INVITE = club_invites.c
RENEWAL = club_renewals.c


def program_codes() -> Select[tuple[str]]:
    return select(programs.c.code).order_by(programs.c.id)


def lock_membership(connection: Connection, member_id: int, club: str) -> Row[Any] | None:
    """The member's row of `club`, locked for the change (PostgreSQL; SQLite serialises
    writers), or None when they never joined it."""
    return connection.execute(_membership(member_id, club).with_for_update()).one_or_none()


def membership_of(connection: Connection, member_id: int, club: str) -> Row[Any] | None:
    """The member's row of `club` as it is, to read (no lock)."""
    return connection.execute(_membership(member_id, club)).one_or_none()


def _membership(member_id: int, club: str) -> Select[Any]:
    return select(club_memberships).where(MEMBERSHIP.member_id == member_id,
                                          MEMBERSHIP.club == club)  # fmt: skip


def save_membership(connection: Connection, row: Row[Any] | None, values: dict[str, Any]) -> int:
    """Insert the membership (`row` None) or change it; its id."""
    if row is None:
        return int(connection.execute(insert(club_memberships).values(**values)
                                      .returning(MEMBERSHIP.id)).scalar_one())  # fmt: skip
    connection.execute(update(club_memberships).where(MEMBERSHIP.id == row.id).values(**values))
    return int(row.id)


def record_event(connection: Connection, **values: Any) -> None:
    connection.execute(insert(club_events).values(**values))


def event_of_payment(connection: Connection, program_id: int, reference: str) -> Row[Any] | None:
    query = select(club_events).where(EVENT.program_id == program_id,
                                      EVENT.payment_ref == reference)  # fmt: skip
    return connection.execute(query).one_or_none()


def events_of(connection: Connection, membership_id: int) -> Sequence[Row[Any]]:
    query = select(club_events).where(EVENT.membership_id == membership_id)
    return connection.execute(query.order_by(EVENT.id.desc())).all()


def memberships_of(connection: Connection, member_id: int) -> Sequence[Row[Any]]:
    query = select(club_memberships).where(MEMBERSHIP.member_id == member_id)
    return connection.execute(query.order_by(MEMBERSHIP.club)).all()


def in_force(now: Any) -> Any:
    """The condition of a membership in force at `now` (a value or a bind parameter)."""
    return and_(MEMBERSHIP.status == Status.ACTIVE.value,
                or_(MEMBERSHIP.ends_at.is_(None), MEMBERSHIP.ends_at > now))  # fmt: skip


# — renewals —


def open_renewal(
    connection: Connection, program_id: int, membership_id: int, due_at: datetime, amount: int,
    now: datetime,
) -> None:  # fmt: skip
    connection.execute(insert(club_renewals).values(
        program_id=program_id, membership_id=membership_id, due_at=due_at, amount=amount,
        status="expected", created_at=now))  # fmt: skip


def settle_renewal(
    connection: Connection, membership_id: int, due_at: datetime | None, status: str,
    now: datetime,
) -> None:  # fmt: skip
    """The expected payment of the period that ends at `due_at` (any, when None) → `status`."""
    where = [RENEWAL.membership_id == membership_id, RENEWAL.status == "expected"]
    if due_at is not None:
        where.append(RENEWAL.due_at == due_at)
    connection.execute(update(club_renewals).where(*where)
                       .values(status=status, settled_at=now))  # fmt: skip


def renewals_due(connection: Connection, program_id: int, now: datetime) -> Sequence[Row[Any]]:
    """Automatic memberships whose paid period ended by `now` and whose renewal is not
    opened yet."""
    opened = select(RENEWAL.id).where(RENEWAL.membership_id == MEMBERSHIP.id,
                                      RENEWAL.due_at == MEMBERSHIP.paid_until)  # fmt: skip
    query = select(club_memberships).where(
        MEMBERSHIP.program_id == program_id,
        MEMBERSHIP.status == Status.ACTIVE.value,
        MEMBERSHIP.auto_renew.is_(True),
        MEMBERSHIP.paid_until <= now,
        ~opened.exists(),
    )
    return connection.execute(query.order_by(MEMBERSHIP.id)).all()


def lapses_due(connection: Connection, program_id: int, now: datetime) -> Sequence[int]:
    query = select(MEMBERSHIP.id).where(
        MEMBERSHIP.program_id == program_id, MEMBERSHIP.status == Status.ACTIVE.value,
        MEMBERSHIP.ends_at.is_not(None), MEMBERSHIP.ends_at <= now)  # fmt: skip
    return connection.execute(query.order_by(MEMBERSHIP.id)).scalars().all()


def lock_membership_by_id(connection: Connection, membership_id: int) -> Row[Any] | None:
    query = select(club_memberships).where(MEMBERSHIP.id == membership_id)
    return connection.execute(query.with_for_update()).one_or_none()


# — invites —


def invite_by_id(connection: Connection, invite_id: int) -> Row[Any]:
    return connection.execute(select(club_invites).where(INVITE.id == invite_id)).one()


def invite_by_code(connection: Connection, program_id: int, code: str) -> Row[Any] | None:
    query = select(club_invites).where(INVITE.program_id == program_id, INVITE.code == code)
    return connection.execute(query).one_or_none()


def take_invite_use(connection: Connection, invite_id: int, now: datetime) -> bool:
    """Take one use of the invite if one is left and it has not expired: one conditional
    UPDATE, so members racing for the last use get it once (PostgreSQL re-checks the
    condition on the row a concurrent taker changed; SQLite serialises writers)."""
    taken = connection.execute(
        update(club_invites)
        .where(INVITE.id == invite_id, INVITE.used < INVITE.max_uses,
               or_(INVITE.expires_at.is_(None), INVITE.expires_at > now))
        .values(used=INVITE.used + 1)
    )  # fmt: skip
    return taken.rowcount == 1


def add_invite(connection: Connection, **values: Any) -> int:
    return int(connection.execute(insert(club_invites).values(**values)
                                  .returning(INVITE.id)).scalar_one())  # fmt: skip


def invites_of(connection: Connection, program_id: int, club: str | None) -> Sequence[Row[Any]]:
    query = select(club_invites).where(INVITE.program_id == program_id)
    if club is not None:
        query = query.where(INVITE.club == club)
    return connection.execute(query.order_by(INVITE.id.desc())).all()


# — figures —


def member_counts(connection: Connection, program_id: int, now: datetime) -> dict[str, int]:
    """Members in force per club."""
    query = (select(MEMBERSHIP.club, func.count())
             .where(MEMBERSHIP.program_id == program_id, in_force(now))
             .group_by(MEMBERSHIP.club))  # fmt: skip
    return {club: int(count) for club, count in connection.execute(query)}


def event_counts(connection: Connection, program_id: int) -> dict[tuple[str, str], int]:
    """Events per club and action (joins, renewals, lapses, leavings) over the club's life."""
    query = (select(EVENT.club, EVENT.action, func.count())
             .where(EVENT.program_id == program_id).group_by(EVENT.club, EVENT.action))  # fmt: skip
    return {(club, action): int(count) for club, action, count in connection.execute(query)}


def expected_renewals(connection: Connection, program_id: int) -> Sequence[Row[Any]]:
    """Expected payments of automatic renewals, oldest first, with the member's card."""
    query = (
        select(RENEWAL.id, RENEWAL.due_at, RENEWAL.amount, MEMBERSHIP.club,
               MEMBERSHIP.member_id, MEMBERSHIP.ends_at, members.c.card)
        .join(club_memberships, MEMBERSHIP.id == RENEWAL.membership_id)
        .join(members, members.c.id == MEMBERSHIP.member_id)
        .where(RENEWAL.program_id == program_id, RENEWAL.status == "expected")
        .order_by(RENEWAL.due_at, RENEWAL.id)
    )  # fmt: skip
    return connection.execute(query).all()
