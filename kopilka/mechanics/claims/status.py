"""The claims' queries (the store beneath the use cases): a claim filed once per receipt,
locked for a decision, read with its member's card, listed by status; every step's event."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select, update

from kopilka.mechanics.claims.model import Action, Status
from kopilka.mechanics.claims.tables import claim_events, claims
from kopilka.platform.statements import NewRow
from kopilka.platform.tables import members, program_versions, programs, purchases

RECEIPT_KEY = ("program_id", "location", "receipt_id")


def insert_claim(connection: Connection, values: Mapping[str, Any]) -> int | None:
    """A new claim's id, or None when its receipt is claimed already."""
    return NewRow(claims, values, unique=RECEIPT_KEY).insert(connection)


def claim_of_receipt(
    connection: Connection, program_id: int, location: str, receipt_id: str
) -> int | None:
    return connection.execute(
        select(claims.c.id).where(
            claims.c.program_id == program_id,
            claims.c.location == location,
            claims.c.receipt_id == receipt_id,
        )
    ).scalar_one_or_none()


def purchase_of_receipt(
    connection: Connection, program_id: int, location: str, receipt_id: str
) -> int | None:
    """The purchase a receipt already made, if the till (or a claim) processed it."""
    return connection.execute(
        select(purchases.c.id).where(
            purchases.c.program_id == program_id,
            purchases.c.location == location,
            purchases.c.receipt_id == receipt_id,
        )
    ).scalar_one_or_none()


def version_at(connection: Connection, program_id: int, at: datetime) -> int | None:
    """The program version in force at `at`: the last one applied by then."""
    return connection.execute(
        select(program_versions.c.version)
        .where(program_versions.c.program_id == program_id, program_versions.c.created_at <= at)
        .order_by(program_versions.c.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def _claims_with_card() -> Select[Any]:
    return select(claims, members.c.card.label("member_card")).join(
        members, members.c.id == claims.c.member_id
    )


def lock_claim(connection: Connection, program_id: int, claim_id: int) -> Any:
    """The claim's row, locked for a decision (SQLite's writers are serialised anyway)."""
    return connection.execute(
        _claims_with_card()
        .where(claims.c.program_id == program_id, claims.c.id == claim_id)
        .with_for_update(of=claims)
    ).one_or_none()


def claim_row(connection: Connection, program_id: int, claim_id: int) -> Any:
    return connection.execute(
        _claims_with_card().where(claims.c.program_id == program_id, claims.c.id == claim_id)
    ).one_or_none()


def claim_rows(
    connection: Connection,
    program_id: int,
    *,
    status: str | None,
    before: int | None,
    limit: int,
    locations: Collection[str] | None,
) -> Sequence[Any]:
    """Claims newest first, of one `status` when given, at `locations` when given."""
    query = _claims_with_card().where(claims.c.program_id == program_id)
    if status is not None:
        query = query.where(claims.c.status == status)
    if before is not None:
        query = query.where(claims.c.id < before)
    if locations is not None:
        query = query.where(claims.c.location.in_(sorted(locations)))
    return connection.execute(query.order_by(claims.c.id.desc()).limit(limit)).all()


def queue_rows(
    connection: Connection, program_id: int, *, limit: int, locations: Collection[str] | None
) -> Sequence[Any]:
    """The open claims, the nearest deadline (the oldest filed) first."""
    query = _claims_with_card().where(
        claims.c.program_id == program_id, claims.c.status == Status.OPEN.value
    )
    if locations is not None:
        query = query.where(claims.c.location.in_(sorted(locations)))
    return connection.execute(query.order_by(claims.c.due_at, claims.c.id).limit(limit)).all()


def confirmed_unprocessed(connection: Connection) -> Sequence[Any]:
    """Claims of every program confirmed but left without their purchase (a crash between
    the decision and the purchase): the worker finishes them."""
    return connection.execute(
        select(claims.c.id, claims.c.program_id).where(claims.c.status == Status.CONFIRMED.value)
    ).all()


def set_claim(connection: Connection, claim_id: int, **values: Any) -> None:
    connection.execute(update(claims).where(claims.c.id == claim_id).values(**values))


def add_event(
    connection: Connection, program_id: int, claim_id: int, action: Action, status: Status,
    *, note: str | None, actor: str, now: datetime,
) -> None:  # fmt: skip
    """One step of a claim's life: who, when, what, why."""
    connection.execute(
        insert(claim_events).values(program_id=program_id, claim_id=claim_id,
                                    action=action.value, status=status.value, note=note,
                                    actor=actor, at=now)
    )  # fmt: skip


def events_of(connection: Connection, claim_id: int) -> Sequence[Any]:
    return connection.execute(
        select(claim_events).where(claim_events.c.claim_id == claim_id).order_by(claim_events.c.id)
    ).all()


def accrued_of(connection: Connection, purchase_id: int) -> int:
    """The points a purchase earned by the rules (its `accrued`, minor units)."""
    return int(
        connection.execute(
            select(purchases.c.accrued).where(purchases.c.id == purchase_id)
        ).scalar_one()
        or 0
    )


def program_codes(connection: Connection, program_ids: Collection[int]) -> Sequence[Any]:
    """(id, code) of the programs named."""
    return connection.execute(
        select(programs.c.id, programs.c.code).where(programs.c.id.in_(sorted(program_ids)))
    ).all()


def open_claims_of(connection: Connection, member_id: int) -> int:
    """How many of a member's claims wait for a decision."""
    return int(
        connection.execute(
            select(func.count()).where(
                claims.c.member_id == member_id, claims.c.status == Status.OPEN.value
            )
        ).scalar_one()
    )
