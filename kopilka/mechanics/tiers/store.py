"""What tiers read and write: members' spend and purchases in a window, what they
bought, their tier rows and the history of changes.

Spend and purchases come from the member's standing, kept as running totals per day by
the purchases' and refunds' own writes (`kopilka.members.standing`): a purchase counts
its `spend` (money net of discounts) unless it is held, cancelled or expired; its refunds
take back their `spend`, and a purchase refunded in full is no longer a purchase. One
query per member — or per batch of members in a review — over at most a row per day of
the window, however long the member's history. What was bought (`bought` thresholds) is
read from the purchases' lines in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)

from kopilka.kernel.receipt import QTY_DIGITS
from kopilka.members.standing import days_between, standing_in, standings_in
from kopilka.platform.tables import (
    member_tiers,
    purchase_lines,
    purchases,
    refunds,
    tier_history,
)

Window = tuple[datetime, datetime]  # the first and last moments counted


def member_standing(
    connection: Connection, member_id: int, window: Window, timezone: str
) -> tuple[int, int]:
    """(spend, purchases) of one member within `window`: from the member's running totals
    per day (`kopilka.members.standing`), at most one row per day of the window."""
    return standing_in(connection, member_id, days_between(*window, timezone))


def standings(
    connection: Connection, member_ids: Sequence[int], windows: Sequence[Window], timezone: str
) -> dict[int, list[tuple[int, int]]]:
    """(spend, purchases) per window for each of `member_ids` — one query for them all.
    Members with nothing counted are absent."""
    days = [days_between(start, end, timezone) for start, end in windows]
    return standings_in(connection, member_ids, days)


def bought_lines(
    connection: Connection, member_id: int, window: Window
) -> list[tuple[str, str | None]]:
    """(sku, category) of every line bought within `window` and not returned in full."""
    rows = connection.execute(
        select(purchases.c.id, purchases.c.status, purchase_lines.c.n, purchase_lines.c.sku,
               purchase_lines.c.category, purchase_lines.c.qty_micro)
        .join(purchase_lines, purchase_lines.c.purchase_id == purchases.c.id)
        .where(
            purchases.c.member_id == member_id,
            purchases.c.status.in_(("completed", "partially_refunded")),
            purchases.c.created_at >= window[0],
            purchases.c.created_at <= window[1],
        )
        .order_by(purchases.c.id, purchase_lines.c.n)
    ).all()  # fmt: skip
    partly = {row.id for row in rows if row.status == "partially_refunded"}
    returned: dict[tuple[int, int], Decimal] = {}
    if partly:
        for refund in connection.execute(
            select(refunds.c.purchase_id, refunds.c.lines).where(refunds.c.purchase_id.in_(partly))
        ):
            for line in refund.lines:
                key = (refund.purchase_id, line["n"])
                returned[key] = returned.get(key, Decimal(0)) + Decimal(line["qty"])
    return [
        (row.sku, row.category)
        for row in rows
        if Decimal(int(row.qty_micro)).scaleb(-QTY_DIGITS) > returned.get((row.id, row.n), 0)
    ]


# — tier rows —


@dataclass(frozen=True)
class TierRow:
    member_id: int
    code: str
    since: datetime
    until: datetime | None
    manual: bool
    reason: str | None
    downgrade_at: datetime | None
    reviewed_at: datetime | None


def tier_rows(connection: Connection, member_ids: Sequence[int]) -> dict[int, TierRow]:
    rows = connection.execute(
        select(member_tiers.c.member_id, member_tiers.c.code, member_tiers.c.since,
               member_tiers.c.until, member_tiers.c.manual, member_tiers.c.reason,
               member_tiers.c.downgrade_at, member_tiers.c.reviewed_at)
        .where(member_tiers.c.member_id.in_(list(member_ids)))
    ).all()  # fmt: skip
    return {row.member_id: TierRow(*row) for row in rows}


@dataclass(frozen=True)
class Change:
    """A member's tier changing: the new state and the history row that says why."""

    program_id: int
    member_id: int
    from_code: str | None  # None: the member had no tier row (the default level)
    to_code: str
    manual: bool
    until: datetime | None
    reason: str
    actor: str
    at: datetime
    occasion: str | None = None
    purchase_id: int | None = None
    reviewed_at: datetime | None = None


def write_change(connection: Connection, change: Change, *, exists: bool) -> None:
    """The member's tier row (inserted or updated: `exists` says which; the caller holds
    the member) and the history row. A change whose `occasion` is already in the
    history breaks the unique key: the transaction is retried and sees it done."""
    values = {
        "code": change.to_code,
        "since": change.at,
        "until": change.until,
        "manual": change.manual,
        "reason": change.reason,
        "downgrade_at": None,
    }
    if change.reviewed_at is not None:
        values["reviewed_at"] = change.reviewed_at
    if exists:
        connection.execute(
            update(member_tiers).where(member_tiers.c.member_id == change.member_id).values(values)
        )
    else:
        connection.execute(
            insert(member_tiers).values(
                member_id=change.member_id, program_id=change.program_id, **values
            )
        )
    connection.execute(
        insert(tier_history).values(
            program_id=change.program_id,
            member_id=change.member_id,
            from_code=change.from_code,
            to_code=change.to_code,
            manual=change.manual,
            until=change.until,
            reason=change.reason,
            actor=change.actor,
            purchase_id=change.purchase_id,
            occasion=change.occasion,
            changed_at=change.at,
        )
    )
