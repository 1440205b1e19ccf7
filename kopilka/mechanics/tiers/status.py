"""A member's tier as the calculator and the API see it, and what the member qualifies for.

The read side of tiers, shared by the member answer (`members.member_document`) and the
tier use cases (`kopilka.mechanics.tiers.handlers`). A member with no stored tier is at the
program's default (first) level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kopilka.kernel.program import Program
from kopilka.mechanics.tiers.model import (
    Standing,
    TierLevel,
    TierSettings,
    holds_counted,
    missing,
    needs_bought,
    qualifies,
    rank,
    tenure_days,
    window_bounds,
)
from kopilka.mechanics.tiers.store import TierRow, Window, bought_lines, member_standing, tier_rows


def seen_tier(settings: TierSettings | None, stored: str | None) -> str | None:
    """The tier a purchase is computed at: the stored one, else the default level."""
    if settings is None:
        return None
    return stored if stored is not None else settings.levels[0].code


def with_bought(
    connection: Connection, program: Program, member_id: int, window: Window, standing: Standing
) -> Standing:
    """`standing` with what was bought in `window` (a category counts with its ancestors;
    a line without one has its catalog product's)."""
    skus: set[str] = set()
    categories: set[str] = set()
    for sku, category in bought_lines(connection, member_id, window):
        skus.add(sku)
        product = program.products.get(sku)
        known = category or (product.category if product else None)
        if known is not None:
            categories.update(program.category_lineage(known))
    return Standing(standing.spend, standing.purchases, standing.tenure_days,
                    frozenset(skus), frozenset(categories))  # fmt: skip


def standing_at(
    connection: Connection, program: Program, member_id: int, joined: datetime, end: datetime
) -> tuple[Standing, Window]:
    """The member's spend, purchases and tenure in the window that ends at `end`."""
    assert program.tiers is not None
    window = window_bounds(program.tiers.window, end, program.timezone)
    spend, count = member_standing(connection, member_id, window, program.timezone)
    return Standing(spend, count, tenure_days(joined, end)), window


def best_level(
    connection: Connection, program: Program, member_id: int, standing: Standing,
    window: Window, *, above: int = -1,
) -> tuple[TierLevel | None, Standing]:  # fmt: skip
    """The highest level above rank `above` the member qualifies for (None: none), and
    the standing — with what was bought, when a level's `bought` had to be looked at."""
    assert program.tiers is not None
    for level in reversed(program.tiers.levels[above + 1 :]):
        if not holds_counted(level.qualify, standing):
            continue
        if needs_bought(level.qualify) and standing.skus is None:
            standing = with_bought(connection, program, member_id, window, standing)
        if qualifies(level, standing):
            return level, standing
    return None, standing


def tier_fields(
    connection: Connection, program: Program, member_id: int, joined: datetime, now: datetime
) -> dict[str, Any]:
    """`tier`, `next_tier` (with what is `missing`) and `privileges` of the member answer."""
    settings = program.tiers
    if settings is None:
        return {"tier": None, "next_tier": None, "privileges": []}
    row = tier_rows(connection, [member_id]).get(member_id)
    code = row.code if row is not None else settings.levels[0].code
    level = next((level for level in settings.levels if level.code == code), None)
    upper = max(rank(settings, code), 0) + 1
    next_tier = None
    if upper < len(settings.levels):
        target = settings.levels[upper]
        standing, window = standing_at(connection, program, member_id, joined, now)
        if needs_bought(target.qualify):
            standing = with_bought(connection, program, member_id, window, standing)
        next_tier = {"code": target.code, "name": target.name,
                     "missing": missing(target, standing, program.money_digits)}  # fmt: skip
    return {
        "tier": tier_json(settings, row, joined),
        "next_tier": next_tier,
        "privileges": list(level.privileges) if level is not None else [],
    }


def tier_json(settings: TierSettings, row: TierRow | None, joined: datetime) -> dict[str, Any]:
    if row is None:
        default = settings.levels[0]
        return {"code": default.code, "name": default.name, "since": joined.isoformat(),
                "until": None, "manual": False, "downgrade_at": None}  # fmt: skip
    name = next((level.name for level in settings.levels if level.code == row.code), row.code)
    return {
        "code": row.code,
        "name": name,
        "since": row.since.isoformat(),
        "until": row.until.isoformat() if row.until else None,
        "manual": row.manual,
        "downgrade_at": row.downgrade_at.isoformat() if row.downgrade_at else None,
    }
