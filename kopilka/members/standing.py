"""A member's standing as the purchases themselves tell it, for every mechanic that
counts it (tiers qualify on it, triggers fire on it): never counters kept aside.

A purchase's spend is money net of discounts; what its refunds took back is not spent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from kopilka.platform.tables import purchases, refunds


def net_spend() -> Any:
    """A purchase's spend less what its refunds took back (looked up only when refunded):
    sum it over the purchases that count (completed, or refunded in part or in full) for
    what a member spent."""
    returned = (
        select(func.coalesce(func.sum(refunds.c.spend), 0))
        .where(refunds.c.purchase_id == purchases.c.id)
        .scalar_subquery()
    )
    spend = func.coalesce(purchases.c.spend, 0)
    return case((purchases.c.status == "completed", spend), else_=spend - returned)
