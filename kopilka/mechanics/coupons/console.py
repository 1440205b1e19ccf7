"""Coupon campaigns created and changed from the operator console (issue 8).

The campaign service (`kopilka.mechanics.coupons.handlers`) does the work; these wrappers give it
the operator's audit row as its `after` hook, so the campaign and the record of who
made or changed it are committed together, or not at all.

    coupon.campaign.create   target campaign:{code}   details: kind, name
    coupon.campaign.update   target campaign:{code}   details: each key that changed
                                                      (`valid.until`, `limits.total` …)
                                                      with its new value
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.mechanics.coupons import handlers as coupons
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator

CREATE = "coupon.campaign.create"
UPDATE = "coupon.campaign.update"
# what an edit may change, as the campaign document names it (code, kind and
# public_code are the campaign's identity: they never change)
CHANGEABLE = ("name", "valid", "limits", "conditions", "effect", "issued_only", "paused")
CLEARED = "—"  # how the audit log writes a key an edit emptied


def create_campaign(
    engine: Engine, operator: Operator, document: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new campaign of the operator's program, audited (`coupon.campaign.create`)."""
    after = operators.audited(operator, CREATE, _campaign_target,
                              lambda answer: {"kind": answer["kind"], "name": answer["name"]},
                              now)  # fmt: skip
    answer, _ = coupons.create_campaign(engine, operator.program, document,
                                        actor=operator.actor, now=now, after=after)  # fmt: skip
    return dict(answer)


def update_campaign(
    engine: Engine, operator: Operator, code: str, change: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The campaign changed as `change` says (the service's PATCH), audited
    (`coupon.campaign.update`) with each key that changed and its new value."""
    # Read before the change to name what changed. A concurrent edit in between could
    # make the list differ slightly from this edit alone; the stored values are exact.
    before = coupons.read_campaign_of(engine, operator.program, code, now=now)
    after = operators.audited(operator, UPDATE, _campaign_target,
                              lambda answer: changed_keys(before, answer), now)  # fmt: skip
    return coupons.update_campaign(engine, operator.program, code, change, now=now,
                                   after=after)  # fmt: skip


def _campaign_target(_: Connection, answer: dict[str, Any]) -> str:
    return f"campaign:{answer['code']}"


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """`{"valid.until": "2026-06-30T00:00:00+03:00", "limits.total": "500"}`: each
    changeable key (a nested one by its path) whose value differs, with its new value."""
    changed: dict[str, str] = {}
    for key in CHANGEABLE:
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            for part in sorted(old.keys() | new.keys()):
                if old.get(part) != new.get(part):
                    changed[f"{key}.{part}"] = _shown(new.get(part))
        elif old != new:
            changed[key] = _shown(new)
    return changed


def _shown(value: object) -> str:
    """A value as one line of the audit log: a list by its items, nothing as a dash."""
    if value is None:
        return CLEARED
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
