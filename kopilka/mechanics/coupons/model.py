"""Coupon campaigns and whether a coupon applies to a receipt.

A campaign is read from its document (the API's body, or what the database keeps of
it) into a `Campaign`, naming every problem with its place; `program_problems` checks
what it names (categories, products, partners, locations, tiers) against the program.
`check_coupon` answers, for one code on one receipt, whether it applies — and if not,
the stable reason of shared/API.md and the words a cashier can read out.

Pure: the time is a parameter, the database's knowledge of a code comes in a
`CouponState`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from kopilka.kernel.errors import Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import Reader, parse_date, show

CAMPAIGN_KEYS = ("code", "name", "kind", "public_code", "valid", "limits", "conditions",
                 "effect", "issued_only", "paused")  # fmt: skip
VALID_KEYS = ("from", "until")
LIMIT_KEYS = ("per_code", "per_member", "total", "budget")
CONDITION_KEYS = ("min_sum", "categories", "skus", "partners", "locations", "segments", "tiers")
EFFECT_KEYS = ("percent", "amount", "points", "free_sku", "skus", "categories", "earn_points")
EFFECT_KINDS = ("percent", "amount", "points", "free_sku")
REASONS = ("not_found", "expired", "used", "limit_reached", "conditions_not_met", "not_yours")
MAX_COUNT = 2**31 - 1  # counts are stored as INTEGER
# a public code people type: letters and digits (any case), '-' and '_', 3 to 32 long
PUBLIC_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$")


class CampaignKind(Enum):
    UNIQUE = "unique"  # single-use codes generated in batches
    PUBLIC = "public"  # one multi-use code given in the campaign


@dataclass(frozen=True, slots=True)
class CouponEffect:
    percent: Decimal | None  # off the target lines
    amount: int | None  # money minor units off the target lines
    points: int | None  # point minor units credited to the member
    free_sku: str | None  # one unit of this sku free, if on the receipt
    skus: frozenset[str] | None  # target lines; None and categories None: the whole receipt
    categories: frozenset[str] | None  # a category matches its sub-categories
    earn_points: bool = False  # discounted lines still earn points on the pre-discount amount


@dataclass(frozen=True, slots=True)
class Limits:
    per_code: int | None  # redemptions of one code (a unique code: 1 unless said)
    per_member: int | None  # redemptions by one member in the campaign
    total: int | None  # redemptions in the campaign
    budget: int | None  # money minor units of discount the campaign may give


@dataclass(frozen=True, slots=True)
class CouponConditions:
    min_sum: int | None = None  # money minor units, Σ of the lines net of discounts
    categories: frozenset[str] | None = None  # some line of these (or a sub-category)
    skus: frozenset[str] | None = None  # some line of these
    partners: frozenset[str] | None = None
    locations: frozenset[str] | None = None
    segments: frozenset[str] | None = None  # the member is in one of these
    tiers: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    code: str
    name: str
    kind: CampaignKind
    public_code: str | None  # upper case; a public campaign's only code
    valid_from: datetime | None  # inclusive
    valid_until: datetime | None  # exclusive
    limits: Limits
    conditions: CouponConditions
    effect: CouponEffect
    issued_only: bool = False  # a code counts only once issued to a member
    paused: bool = False

    @property
    def needs_member(self) -> bool:
        """Who redeems must be known: to count them, to check the owner, to credit points."""
        return (self.limits.per_member is not None or self.issued_only
                or self.effect.points is not None)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CouponState:
    """What the database knows of one code, loaded for a purchase."""

    coupon_id: int
    code: str  # as stored: a unique code's characters, a public code upper-cased
    campaign: Campaign
    owner_member_id: int | None
    uses: int
    member_uses: int  # this member's redemptions in the campaign
    campaign_uses: int
    campaign_discount: int  # money minor units given so far
    status: str  # available | issued | used | expired | paused (see `coupon_status`)
    campaign_id: int = 0  # the campaign's row (0: a state made without one, in tests)
    own: OwnWindow | None = None  # a personal coupon's own window (a purchase gave it)


@dataclass(frozen=True, slots=True)
class OwnWindow:
    """A personal coupon a purchase gave (a stamp card's reward, a bounce-back): usable
    from `valid_from` until `valid_until` within its campaign's window, and no more once
    a refund of that purchase revoked it."""

    valid_from: datetime | None
    valid_until: datetime | None
    revoked_at: datetime | None = None

    def problem(self, at: datetime) -> str | None:
        if self.revoked_at is not None:
            return "the coupon was revoked: the purchase that earned it was refunded"
        if self.valid_from is not None and at < self.valid_from:
            return f"the coupon is valid from {self.valid_from.isoformat()}"
        if self.valid_until is not None and at >= self.valid_until:
            return f"the coupon expired at {self.valid_until.isoformat()}"
        return None


@dataclass(frozen=True, slots=True)
class CouponCheck:
    code: str  # as the POS sent it
    coupon_id: int | None
    campaign: str | None
    reason: str | None  # None: applies; else one of REASONS
    detail: str  # human words: why
    effect: CouponEffect | None
    # what is left of the campaign's budget (money minor units): cap the discount at it;
    # None: no budget
    budget_left: int | None = None
    state: CouponState | None = None  # what it was checked against, for a coupon that applies


# — reading a campaign —


@dataclass(frozen=True, slots=True)
class Units:
    """How the program counts: money and point decimals, and its time zone."""

    money_digits: int
    points_digits: int
    timezone: str

    @staticmethod
    def of(program: Program) -> Units:
        return Units(program.money_digits, program.points.precision, program.timezone)


def read_campaign(data: object, units: Units, problems: list[Problem]) -> Campaign | None:
    """The campaign a document declares; None (with `problems`) when it can't be read."""
    body = Reader(data, "", problems, CAMPAIGN_KEYS)
    before = len(problems)
    code = body.code("code")
    name = body.text("name") or code
    kind = body.choice("kind", CampaignKind, required=True)
    public_code = _public_code(body, kind)
    valid_from, valid_until = _validity(body, units.timezone)
    limits = _limits(body, kind, units)
    conditions = _conditions(body, units)
    effect = _effect(body, units)
    issued_only = bool(body.boolean("issued_only"))
    paused = bool(body.boolean("paused"))
    if issued_only and kind is CampaignKind.PUBLIC:
        body.report("issued_only", "a public code is not issued to members: use a unique "
                    "campaign, or leave issued_only out")  # fmt: skip
    if len(problems) > before:
        return None
    assert code is not None
    assert name is not None
    assert kind is not None
    assert effect is not None
    return Campaign(code, name, kind, public_code, valid_from, valid_until, limits,
                    conditions, effect, issued_only, paused)  # fmt: skip


def _public_code(body: Reader, kind: CampaignKind | None) -> str | None:
    raw = body.text("public_code", pattern=PUBLIC_CODE,
                    what="a code (3–32 letters, digits, '-', '_')")  # fmt: skip
    if kind is CampaignKind.PUBLIC and raw is None and not body.has("public_code"):
        body.report(body.at("public_code"), "is required for a public campaign (e.g. SPRING10)")
    if kind is CampaignKind.UNIQUE and body.has("public_code"):
        body.report(body.at("public_code"), "a unique campaign's codes are generated in "
                    "batches: leave public_code out")  # fmt: skip
    return raw.upper() if raw else None


_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def moment(raw: object, timezone: str, *, end_of_day: bool) -> datetime | None:
    """A validity bound: a date is the start of that day (or, for `until`, the end of
    it) in `timezone`; a time without an offset is in `timezone` too. None for what is
    not one — and for years past 9998, which can't be stored in every time zone."""
    found = _moment(raw, timezone, end_of_day=end_of_day)
    if found is None or not MIN_YEAR <= found.year <= MAX_YEAR:
        return None
    return found


MIN_YEAR, MAX_YEAR = 1970, 9998


def _moment(raw: object, timezone: str, *, end_of_day: bool) -> datetime | None:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    day = parse_date(raw)
    if day is not None:
        if end_of_day and day.year > MAX_YEAR:
            return None
        day = day + timedelta(days=1) if end_of_day else day
        return datetime.combine(day, time(), tzinfo=zoneinfo.ZoneInfo(timezone))
    if not isinstance(raw, str) or "T" not in raw.upper():
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return parsed


def _validity(body: Reader, timezone: str) -> tuple[datetime | None, datetime | None]:
    valid = body.mapping("valid", VALID_KEYS)
    if valid is None:
        return None, None
    bounds: list[datetime | None] = []
    for key, end_of_day in (("from", False), ("until", True)):
        raw = valid.raw(key)
        bound = moment(raw, timezone, end_of_day=end_of_day) if raw is not None else None
        if raw is not None and bound is None:
            valid.report(valid.at(key), f"{show(raw)} is not a date (YYYY-MM-DD) or a time "
                         "(2026-03-01T10:00:00, with or without an offset) "
                         f"in the years {MIN_YEAR}–{MAX_YEAR}")  # fmt: skip
        bounds.append(bound)
    start, end = bounds
    if start is not None and end is not None and end <= start:
        valid.report(valid.at("until"), "must be after `from`")
    return start, end


def _limits(body: Reader, kind: CampaignKind | None, units: Units) -> Limits:
    limits = body.mapping("limits", LIMIT_KEYS)
    if limits is None:
        limits = Reader({}, body.at("limits"), body.problems, LIMIT_KEYS)
    counts = [limits.integer(key, minimum=1, maximum=MAX_COUNT)
              for key in ("per_code", "per_member", "total")]  # fmt: skip
    per_code, per_member, total = counts
    if per_code is None and kind is CampaignKind.UNIQUE:
        per_code = 1
    budget = limits.minor("budget", units.money_digits, unit="money")
    if budget == 0:
        limits.report(limits.at("budget"), "must be more than 0; leave it out for no budget")
    return Limits(per_code, per_member, total, budget)


def _conditions(body: Reader, units: Units) -> CouponConditions:
    when = body.mapping("conditions", CONDITION_KEYS)
    if when is None:
        return CouponConditions()
    return CouponConditions(
        min_sum=when.minor("min_sum", units.money_digits, unit="money"),
        **{key: when.codes(key) for key in CONDITION_KEYS[1:]},
    )


def _effect(body: Reader, units: Units) -> CouponEffect | None:
    effect = body.mapping("effect", EFFECT_KEYS, required=True)
    if effect is None:
        return None
    given = [key for key in EFFECT_KINDS if effect.has(key)]
    if len(given) != 1:
        effect.report(effect.loc, "give exactly one of percent, amount, points, free_sku"
                      + (f" (not {', '.join(given)})" if given else ""))  # fmt: skip
    percent = effect.decimal("percent", minimum=Decimal(0), maximum=Decimal(100))
    if percent == 0:
        effect.report(effect.at("percent"), "must be more than 0")
    amount = effect.minor("amount", units.money_digits, unit="money")
    points = effect.minor("points", units.points_digits, unit="points")
    for key, value in (("amount", amount), ("points", points)):
        if value == 0:
            effect.report(effect.at(key), "must be more than 0")
    free_sku = effect.text("free_sku", what="a product's sku")
    if free_sku is not None and (effect.has("skus") or effect.has("categories")):
        effect.report(effect.loc, "a free product is its own target: leave skus and "
                      "categories out")  # fmt: skip
    if points is not None and (effect.has("skus") or effect.has("categories")):
        effect.report(effect.loc, "points are credited once per receipt: leave skus and "
                      "categories out")  # fmt: skip
    earn_points = bool(effect.boolean("earn_points"))
    return CouponEffect(percent, amount, points, free_sku, effect.codes("skus"),
                        effect.codes("categories"), earn_points)  # fmt: skip


def program_problems(campaign: Campaign, program: Program) -> list[Problem]:
    """What the campaign names that the program does not declare."""
    conditions, effect = campaign.conditions, campaign.effect
    levels = [level.code for level in program.tiers.levels] if program.tiers else []
    partners = [partner.code for partner in program.partners]
    checks: list[tuple[str, frozenset[str] | None, Sequence[str] | Mapping[str, Any], str]] = [
        ("conditions.categories", conditions.categories, program.categories, "category"),
        ("conditions.skus", conditions.skus, program.products, "product"),
        ("conditions.partners", conditions.partners, partners, "partner"),
        ("conditions.locations", conditions.locations, program.locations, "location"),
        ("conditions.tiers", conditions.tiers, levels, "tier"),
        ("effect.skus", effect.skus, program.products, "product"),
        ("effect.categories", effect.categories, program.categories, "category"),
        ("effect.free_sku", frozenset([effect.free_sku]) if effect.free_sku else None,
         program.products, "product"),
    ]  # fmt: skip
    problems = []
    for loc, named, known, what in checks:
        for code in sorted(named or ()):
            if code not in known:
                problems.append(Problem(loc, f"{code!r} is not a {what} of the program"))
    return problems


def campaign_document(campaign: Campaign, units: Units) -> dict[str, Any]:
    """The campaign as JSON (amounts as strings, times with their offsets): what the API
    shows and the database keeps — `read_campaign` reads it back to the same campaign."""
    limits, conditions, effect = campaign.limits, campaign.conditions, campaign.effect
    money = _formatter(units.money_digits)
    document: dict[str, Any] = {
        "code": campaign.code, "name": campaign.name, "kind": campaign.kind.value,
        "public_code": campaign.public_code,
        "valid": {"from": _iso(campaign.valid_from), "until": _iso(campaign.valid_until)},
        "limits": {"per_code": limits.per_code, "per_member": limits.per_member,
                   "total": limits.total, "budget": money(limits.budget)},
        "conditions": {"min_sum": money(conditions.min_sum),
                       **{key: _sorted(getattr(conditions, key)) for key in CONDITION_KEYS[1:]}},
        "effect": {"percent": str(effect.percent) if effect.percent is not None else None,
                   "amount": money(effect.amount),
                   "points": _formatter(units.points_digits)(effect.points),
                   "free_sku": effect.free_sku, "skus": _sorted(effect.skus),
                   "categories": _sorted(effect.categories), "earn_points": effect.earn_points},
        "issued_only": campaign.issued_only, "paused": campaign.paused,
    }  # fmt: skip
    return document


def _formatter(digits: int) -> Any:
    return lambda minor: format_minor(minor, digits) if minor is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _sorted(codes: frozenset[str] | None) -> list[str] | None:
    return sorted(codes) if codes is not None else None


# — a coupon's standing —


def coupon_status(campaign: Campaign, owner_member_id: int | None, uses: int,
                  at: datetime, own: OwnWindow | None = None) -> str:  # fmt: skip
    """`used` (no use left), `revoked` (a refund took it back), `expired` (outside the
    validity window), `paused`, `issued` (to a member) or `available`."""
    if campaign.limits.per_code is not None and uses >= campaign.limits.per_code:
        return "used"
    if own is not None and own.revoked_at is not None:
        return "revoked"
    if _window_problem(campaign, at) is not None or (own is not None and own.problem(at)):
        return "expired"
    if campaign.paused:
        return "paused"
    return "issued" if owner_member_id is not None else "available"


def _window_problem(campaign: Campaign, at: datetime) -> str | None:
    if campaign.valid_from is not None and at < campaign.valid_from:
        return f"the campaign {campaign.code} starts at {campaign.valid_from.isoformat()}"
    if campaign.valid_until is not None and at >= campaign.valid_until:
        return f"the campaign {campaign.code} ended at {campaign.valid_until.isoformat()}"
    return None


# — does a coupon apply? —

ReceiptLine = tuple[str, str | None, int]  # (sku, category, amount net of discounts)


def check_coupon(
    state: CouponState | None, code: str, *, program: Program, lines: Sequence[ReceiptLine],
    location: str | None, member_id: int | None, tier: str | None, segments: frozenset[str],
    at: datetime,
) -> CouponCheck:  # fmt: skip
    """Whether the coupon `code` (as sent) applies to the receipt; the first reason it
    does not otherwise, in the order: not_found, expired, used, conditions_not_met (no
    member where one is needed), not_yours, limit_reached, conditions_not_met."""
    if state is None:
        return CouponCheck(code, None, None, "not_found", f"no coupon {code!r} in this program",
                           None)  # fmt: skip
    refusal = _refusal(state, program, lines, location, member_id, tier, segments, at)
    campaign = state.campaign
    if refusal is not None:
        reason, detail = refusal
        return CouponCheck(code, state.coupon_id, campaign.code, reason, detail, None)
    budget = campaign.limits.budget
    left = budget - state.campaign_discount if budget is not None else None
    return CouponCheck(code, state.coupon_id, campaign.code, None,
                       f"applies: {campaign.name}", campaign.effect, left, state)  # fmt: skip


def _refusal(
    state: CouponState, program: Program, lines: Sequence[ReceiptLine], location: str | None,
    member_id: int | None, tier: str | None, segments: frozenset[str], at: datetime,
) -> tuple[str, str] | None:  # fmt: skip
    campaign = state.campaign
    window = _window_problem(campaign, at) or (state.own.problem(at) if state.own else None)
    if window is not None:
        return "expired", window
    if campaign.paused:
        return "expired", f"the campaign {campaign.code} is paused"
    if campaign.limits.per_code is not None and state.uses >= campaign.limits.per_code:
        return "used", f"the coupon was used {_times(state.uses)}; it allows " \
                       f"{_times(campaign.limits.per_code)}"  # fmt: skip
    if member_id is None and (campaign.needs_member or state.owner_member_id is not None):
        return "conditions_not_met", "the coupon is for a member: name the member on the receipt"
    ownership = _not_yours(state, member_id)
    if ownership is not None:
        return "not_yours", ownership
    limit = _limit_reached(state)
    if limit is not None:
        return "limit_reached", limit
    unmet = _unmet(campaign, program, lines, location, tier, segments)
    return ("conditions_not_met", unmet) if unmet is not None else None


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _not_yours(state: CouponState, member_id: int | None) -> str | None:
    if state.owner_member_id is not None and state.owner_member_id != member_id:
        return "the coupon was issued to another member"
    if state.campaign.issued_only and state.owner_member_id is None:
        return "the coupon counts only once issued to a member, and it was not issued"
    return None


def _limit_reached(state: CouponState) -> str | None:
    limits = state.campaign.limits
    if limits.per_member is not None and state.member_uses >= limits.per_member:
        return f"the member has used this campaign's coupons {_times(state.member_uses)}; " \
               f"it allows {_times(limits.per_member)} per member"  # fmt: skip
    if limits.total is not None and state.campaign_uses >= limits.total:
        return f"the campaign's {limits.total} redemptions are all taken"
    if limits.budget is not None and state.campaign_discount >= limits.budget:
        return "the campaign's budget is spent"
    return None


def _unmet(
    campaign: Campaign, program: Program, lines: Sequence[ReceiptLine], location: str | None,
    tier: str | None, segments: frozenset[str],
) -> str | None:  # fmt: skip
    """The first condition of the campaign the receipt does not meet, in words."""
    when, effect = campaign.conditions, campaign.effect
    digits = program.money_digits
    total = sum(amount for _sku, _category, amount in lines)
    if when.min_sum is not None and total < when.min_sum:
        return f"the receipt is {format_minor(total, digits)}; the coupon needs " \
               f"{format_minor(when.min_sum, digits)}"  # fmt: skip
    place = program.locations.get(location) if location is not None else None
    partner = place.partner if place is not None else None
    for named, value, what in ((when.locations, location, "at locations"),
                               (when.partners, partner, "at partners"),
                               (when.tiers, tier, "for tiers")):  # fmt: skip
        if named is not None and value not in named:
            return f"the coupon is valid {what} {', '.join(sorted(named))} only"
    if when.segments is not None and not when.segments & segments:
        return f"the coupon is for the segments {', '.join(sorted(when.segments))} only"
    if not _any_line(program, lines, when.skus, when.categories):
        return f"the receipt has no {_goods(when.skus, when.categories)}"
    if effect.free_sku is not None and not any(sku == effect.free_sku for sku, _, _ in lines):
        return f"the receipt has no {effect.free_sku} to give free"
    if not _any_line(program, lines, effect.skus, effect.categories):
        return f"the coupon is for {_goods(effect.skus, effect.categories)}: none on the receipt"
    return None


def _goods(skus: frozenset[str] | None, categories: frozenset[str] | None) -> str:
    named = sorted(skus or ()) + [f"category {code}" for code in sorted(categories or ())]
    return ", ".join(named)


def _any_line(program: Program, lines: Sequence[ReceiptLine], skus: frozenset[str] | None,
              categories: frozenset[str] | None) -> bool:  # fmt: skip
    """Some line is one of `skus` or in one of `categories`; True when neither is given."""
    if skus is None and categories is None:
        return True
    return any(is_target(program, sku, category, skus, categories)
               for sku, category, _ in lines)  # fmt: skip


def is_target(program: Program, sku: str, category: str | None, skus: frozenset[str] | None,
              categories: frozenset[str] | None) -> bool:  # fmt: skip
    """The line is one the effect (or condition) names: its sku, or its category or an
    ancestor of it; every line when neither is named. A line sent without a category has
    its product's, if the catalog knows it."""
    if skus is None and categories is None:
        return True
    if skus is not None and sku in skus:
        return True
    if categories is None:
        return False
    if category is None:
        product = program.products.get(sku)
        category = product.category if product is not None else None
    return category is not None and bool(categories & set(program.category_lineage(category)))
