"""Discounts: immediate price reductions, applied to a receipt before points are computed.

A discount has one effect — a percent or an amount off its target lines, a percent
that grows with the member's lifetime spend (accumulative), buy X get Y, every n-th
item, the cheapest item free, a bundle price, one unit of a product free — and the
conditions of a rule's `when`, plus `first_purchase`, `bought_at` (a cross-discount:
bought at partner A lately → a discount at partner B) and `cards` (a paid discount
card the member holds). `skus`/`categories` in `when` name the lines it reduces.

Stacking: an `exclusive` discount applies alone; of the exclusive discounts one by
one and the stack of all the stackable ones, the receipt gets whichever gives the
most. The stack runs in `priority` order (higher first, then as written), each
discount working on what the ones before it left — and so does `receipt_total`,
compared with the receipt net of the discounts before it. Coupons' discounts come
last, on top of the winner. Caps: `max_amount` per discount, and the program's
`discount_limits` — the most discount on a line and on the receipt, in percent of
their price before any discount.

All amounts are integers in money minor units; a discount's exact total is rounded
half-up once, then spread over its lines by largest remainder, so the lines always
add up to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import lcm
from typing import NamedTuple

from kopilka.kernel.money import apportion, format_minor
from kopilka.kernel.program import Conditions
from kopilka.kernel.receipt import MemberContext

HUNDRED = Decimal(100)


# — what a program declares —


@dataclass(frozen=True, slots=True)
class PercentOff:
    percent: Decimal


@dataclass(frozen=True, slots=True)
class AmountOff:
    amount: int  # money minor units off the target lines together


@dataclass(frozen=True, slots=True)
class Accumulative:
    """The percent of the highest band whose `spend` the member's lifetime spend reached."""

    bands: tuple[tuple[int, Decimal], ...]  # (lifetime spend from, percent), ascending

    def percent_for(self, spend: int) -> Decimal | None:
        reached = [percent for start, percent in self.bands if spend >= start]
        return reached[-1] if reached else None


@dataclass(frozen=True, slots=True)
class BuyGet:
    """In every group of `buy + get` units, the `get` cheapest are `percent` off; `once`:
    one group per receipt (the cheapest item free among `buy + get` or more)."""

    buy: int
    get: int
    percent: Decimal
    once: bool = False
    stated: str = "buy_get"  # buy_get | nth_item | cheapest_free: how the file said it


@dataclass(frozen=True, slots=True)
class Bundle:
    """These units together cost `price`: each complete set found in the receipt."""

    items: tuple[tuple[str, int], ...]  # (sku, qty)
    price: int


@dataclass(frozen=True, slots=True)
class FreeUnit:
    """One unit of `sku` free (a coupon's gift)."""

    sku: str


Effect = PercentOff | AmountOff | Accumulative | BuyGet | Bundle | FreeUnit


@dataclass(frozen=True, slots=True)
class CrossCondition:
    """Bought at one of `partners` within the last `days` (a cross-discount)."""

    partners: frozenset[str]
    days: int


@dataclass(frozen=True, slots=True)
class Discount:
    code: str
    effect: Effect
    when: Conditions = field(default_factory=Conditions)
    name: str | None = None
    first_purchase: bool = False
    bought_at: CrossCondition | None = None
    cards: frozenset[str] | None = None  # paid discount cards, any of them
    exclusive: bool = False
    priority: int = 0
    max_amount: int | None = None  # money minor units, per receipt
    earn_points: bool = False  # the reduced lines still earn points on what they cost before


@dataclass(frozen=True, slots=True)
class DiscountLimits:
    receipt_percent: Decimal = HUNDRED  # the most discount on a receipt, % of its price
    line_percent: Decimal = HUNDRED  # the most discount on a line, % of its price


@dataclass(frozen=True, slots=True)
class DiscountCard:
    """A paid discount card (seed 004): a one-time fee buys the `cards` condition."""

    code: str
    name: str
    fee: int  # money minor units
    valid_days: int | None  # None: for good


@dataclass(frozen=True, slots=True)
class DiscountSettings:
    discounts: tuple[Discount, ...] = ()
    limits: DiscountLimits = DiscountLimits()
    cards: Mapping[str, DiscountCard] = field(default_factory=dict)

    @property
    def needs_history(self) -> bool:
        """Whether pricing needs the member's purchase history (a query per purchase)."""
        return any(
            d.first_purchase or d.bought_at is not None or isinstance(d.effect, Accumulative)
            for d in self.discounts
        )

    @property
    def needs_cards(self) -> bool:
        return any(d.cards is not None for d in self.discounts)


# — what pricing needs to know and answers —


class PricedLine(NamedTuple):
    sku: str
    category: str | None
    qty: Decimal
    gross: int  # qty × price, before any discount
    amount: int  # what is left to pay
    earning: int  # the part of the discount that still earns points


class DiscountShare(NamedTuple):
    """One discount's part of a line's discount (a line's `explain` entry)."""

    code: str
    amount: int


class AppliedDiscount(NamedTuple):
    code: str
    name: str | None
    amount: int
    coupon: str | None = None  # the coupon code, for a coupon's discount


class Pricing(NamedTuple):
    lines: tuple[PricedLine, ...]
    shares: tuple[tuple[DiscountShare, ...], ...]  # per line, in the order applied
    applied: tuple[AppliedDiscount, ...]
    notes: tuple[str, ...]  # why a matching discount gave nothing


@dataclass(frozen=True, slots=True)
class Offer:
    """A discount to apply beyond the program's own, e.g. a coupon's."""

    discount: Discount
    coupon: str | None = None


# — pricing —


LineFacts = tuple[str, str | None, Decimal, int, int]  # sku, category, qty, gross, amount


# A later step's offers for the lines as the discounts before it leave them (the coupons:
# checked against what is left of each line, so the receipt is priced once)
OfferStep = Callable[[tuple[PricedLine, ...]], Sequence[Offer]]
Offers = Sequence[Offer] | OfferStep


def price(
    settings: DiscountSettings,
    lines: Sequence[LineFacts],
    *,
    lineage: Callable[[str | None], tuple[str, ...]],
    place: tuple[str | None, str | None],  # (location, partner)
    at: datetime,
    shopper: MemberContext | None,
    offers: Offers = (),
    money_digits: int = 2,
) -> Pricing:
    """The receipt's lines after the program's discounts and then `offers` — given, or
    made by a step (coupons) from the lines as the program's discounts leave them."""
    start = _Books.start(lines, settings.limits)
    targets = _Targets(start.lines, lineage)
    matching = [
        d for d in settings.discounts if _holds(d, place=place, at=at, shopper=shopper)
    ]  # fmt: skip
    best, notes = _best_of(matching, start, targets, shopper, money_digits)
    if callable(offers):
        offers = offers(best.lines)
    for offer in offers:
        best = best.apply(offer.discount, targets, shopper, coupon=offer.coupon)
    return best.pricing(notes)


class _Targets:
    """Which lines each discount reduces — the same in every alternative, so found once."""

    def __init__(
        self, lines: tuple[PricedLine, ...], lineage: Callable[[str | None], tuple[str, ...]]
    ) -> None:
        self.lines = lines
        self.lineage = lineage
        self._found: dict[int, list[int]] = {}

    def of(self, discount: Discount) -> list[int]:
        found = self._found.get(id(discount))
        if found is None:
            found = [i for i, line in enumerate(self.lines)
                     if _targets(discount, line, self.lineage)]  # fmt: skip
            self._found[id(discount)] = found
        return found


def _best_of(
    matching: list[Discount], start: _Books, targets: _Targets,
    shopper: MemberContext | None, money_digits: int,
) -> tuple[_Books, list[str]]:  # fmt: skip
    """The exclusive discounts one by one against the stack of the stackable ones; the
    ones that would have given something but lost, named in notes."""
    ordered = sorted(matching, key=lambda d: -d.priority)  # stable: as written among equals
    stack = start
    for discount in ordered:
        if not discount.exclusive:
            stack = stack.apply(discount, targets, shopper)
    best, givers = stack, set(stack.applied_codes)
    for discount in ordered:
        if discount.exclusive:
            alone = start.apply(discount, targets, shopper)
            if alone.discount_total > start.discount_total:
                givers.add(discount.code)
            if alone.discount_total > best.discount_total:
                best = alone
    applied = best.applied_codes
    notes = [
        f"discount {d.code} not applied: {_loser_why(d, best, money_digits)}"
        for d in ordered
        if d.code in givers and d.code not in applied
    ]
    return best, notes


def _loser_why(discount: Discount, best: _Books, digits: int) -> str:
    given = format_minor(best.discount_total, digits)
    if discount.exclusive:
        return f"it is exclusive, and the other discounts give more ({given})"
    winner = best.applied[0].code if best.applied else "?"
    return f"exclusive discount {winner} gives more ({given})"


def _holds(
    discount: Discount, *, place: tuple[str | None, str | None], at: datetime,
    shopper: MemberContext | None,
) -> bool:  # fmt: skip
    """The receipt-level conditions (all but `receipt_total`, `skus`, `categories`)."""
    when = discount.when
    location, partner = place
    if when.locations is not None and location not in when.locations:
        return False
    if when.partners is not None and partner not in when.partners:
        return False
    if not when.holds_at(at):
        return False
    needs_member = (
        when.tiers is not None or when.segments is not None or when.members is not None
        or discount.first_purchase or discount.bought_at is not None
        or discount.cards is not None or isinstance(discount.effect, Accumulative)
    )  # fmt: skip
    if shopper is None:
        return not needs_member
    return (
        (when.tiers is None or shopper.tier in when.tiers)
        and (when.segments is None or not when.segments.isdisjoint(shopper.segments))
        and (when.members is None or not when.members.isdisjoint(shopper.refs))
        and (not discount.first_purchase or shopper.purchases == 0)
        and (discount.cards is None or not discount.cards.isdisjoint(shopper.cards))
        and (discount.bought_at is None or _bought_lately(discount.bought_at, shopper, at))
    )


def _bought_lately(cross: CrossCondition, shopper: MemberContext, at: datetime) -> bool:
    since = at - timedelta(days=cross.days)
    return any(
        shopper.last_bought.get(partner, since) > since for partner in cross.partners
    )  # fmt: skip


@dataclass(frozen=True)
class _Books:
    """The receipt as discounts leave it: immutable, so alternatives can be compared."""

    lines: tuple[PricedLine, ...]
    shares: tuple[tuple[DiscountShare, ...], ...]
    applied: tuple[AppliedDiscount, ...]
    line_caps: tuple[int, ...]  # the most discount each line may get in all
    receipt_cap: int  # … and the receipt
    discount_total: int  # Σ gross − amount: the receipt's discount so far

    @classmethod
    def start(cls, lines: Sequence[LineFacts], limits: DiscountLimits) -> _Books:
        priced = tuple(
            PricedLine(sku, category, qty, gross, amount, 0)
            for sku, category, qty, gross, amount in lines
        )
        line_caps = tuple(_percent_of(line.gross, limits.line_percent) for line in priced)
        receipt_cap = _percent_of(sum(line.gross for line in priced), limits.receipt_percent)
        total = sum(line.gross - line.amount for line in priced)
        return cls(priced, tuple(() for _ in priced), (), line_caps, receipt_cap, total)

    @property
    def applied_codes(self) -> frozenset[str]:
        return frozenset(a.code for a in self.applied)

    def pricing(self, notes: Sequence[str]) -> Pricing:
        return Pricing(self.lines, self.shares, self.applied, tuple(notes))

    def apply(
        self, discount: Discount, targets_of: _Targets, shopper: MemberContext | None, *,
        coupon: str | None = None,
    ) -> _Books:  # fmt: skip
        """These books with `discount` applied, capped by its and the program's limits."""
        band = discount.when.receipt_total
        if band is not None and not band.contains(sum(line.amount for line in self.lines)):
            return self
        targets = targets_of.of(discount)
        if not targets:
            return self
        wanted = _amounts(discount.effect, [self.lines[i] for i in targets], shopper)
        parts = self._capped(discount, targets, wanted)
        if not any(parts):
            return self
        lines = list(self.lines)
        shares = list(self.shares)
        for i, part in zip(targets, parts, strict=True):
            if part:
                line = lines[i]
                earning = line.earning + (part if discount.earn_points else 0)
                lines[i] = line._replace(amount=line.amount - part, earning=earning)
                shares[i] = (*shares[i], DiscountShare(discount.code, part))
        given = sum(parts)
        applied = AppliedDiscount(discount.code, discount.name, given, coupon)
        return replace(self, lines=tuple(lines), shares=tuple(shares),
                       applied=(*self.applied, applied),
                       discount_total=self.discount_total + given)  # fmt: skip

    def _capped(self, discount: Discount, targets: list[int], wanted: list[int]) -> list[int]:
        """`wanted` per target line, within the line cap, `max_amount` and the receipt cap."""
        parts = []
        for i, amount in zip(targets, wanted, strict=True):
            line = self.lines[i]
            room = self.line_caps[i] - (line.gross - line.amount)
            parts.append(max(0, min(amount, room, line.amount)))
        room = self.receipt_cap - self.discount_total
        if discount.max_amount is not None:
            room = min(room, discount.max_amount)
        total = sum(parts)
        if total > max(room, 0):
            parts = apportion([p * max(room, 0) for p in parts], total, max(room, 0))
        return parts


def _percent_of(amount: int, percent: Decimal) -> int:
    """`percent` of `amount`, rounded down (a cap never rounds up past itself)."""
    numerator, denominator = percent.as_integer_ratio()
    return amount * numerator // (denominator * 100)


def _targets(
    discount: Discount, line: PricedLine, lineage: Callable[[str | None], tuple[str, ...]]
) -> bool:
    effect = discount.effect
    if isinstance(effect, FreeUnit):
        return line.sku == effect.sku
    if isinstance(effect, Bundle):
        return any(line.sku == sku for sku, _ in effect.items)
    when = discount.when
    if when.skus is not None and line.sku not in when.skus:
        return False
    return when.categories is None or not when.categories.isdisjoint(lineage(line.category))


def _amounts(effect: Effect, lines: list[PricedLine], shopper: MemberContext | None) -> list[int]:
    """What `effect` takes off each of its target lines, before caps."""
    if not lines:
        return []
    if isinstance(effect, PercentOff):
        return _percent_off(lines, effect.percent)
    if isinstance(effect, Accumulative):
        percent = effect.percent_for(shopper.lifetime_spend if shopper else 0)
        return _percent_off(lines, percent) if percent else [0] * len(lines)
    if isinstance(effect, AmountOff):
        base = [line.amount for line in lines]
        total = min(effect.amount, sum(base))
        return apportion([b * total for b in base], sum(base), total) if total else [0] * len(base)
    if isinstance(effect, BuyGet):
        return _buy_get(effect, lines)
    if isinstance(effect, Bundle):
        return _bundle(effect, lines)
    return _free_unit(lines)


def _spread(exact: list[Fraction]) -> list[int]:
    """Exact parts → whole minor units: the total rounded half-up once, by largest remainder."""
    total = sum(exact, Fraction(0))
    rounded = (2 * total.numerator + total.denominator) // (2 * total.denominator)
    common = lcm(*(part.denominator for part in exact))
    numerators = [int(part * common) for part in exact]
    return apportion(numerators, common, rounded)


def _percent_off(lines: list[PricedLine], percent: Decimal) -> list[int]:
    """`percent` of each line: the exact total rounded half-up once, spread by largest
    remainder — in integers (this is the hot path: no Fractions)."""
    numerator, denominator = percent.as_integer_ratio()
    denominator *= 100
    exact = [line.amount * numerator for line in lines]
    total = (2 * sum(exact) + denominator) // (2 * denominator)
    return apportion(exact, denominator, total)


Units = list[tuple[Fraction, int, int]]  # (a unit's price now, how many, line index)


def _units(lines: list[PricedLine]) -> Units:
    """The whole units of the lines, grouped per line (a line of a million units is one
    group, not a million entries); weighed goods don't count."""
    return [
        (Fraction(line.amount, int(line.qty)), int(line.qty), index)
        for index, line in enumerate(lines)
        if line.qty == line.qty.to_integral_value() and line.qty > 0
    ]


def _take(groups: Units, wanted: int) -> list[tuple[Fraction, int, int]]:
    """The first `wanted` units of `groups` in their order, as (price, count, index)."""
    taken = []
    for unit_price, count, index in groups:
        if wanted <= 0:
            break
        part = min(count, wanted)
        taken.append((unit_price, part, index))
        wanted -= part
    return taken


def _buy_get(effect: BuyGet, lines: list[PricedLine]) -> list[int]:
    groups = sorted(_units(lines), key=lambda group: group[0])  # cheapest first
    sets = sum(count for _, count, _ in groups) // (effect.buy + effect.get)
    if effect.once:
        sets = min(sets, 1)
    exact = [Fraction(0)] * len(lines)
    rate = Fraction(effect.percent) / 100
    for unit_price, count, index in _take(groups, sets * effect.get):
        exact[index] += unit_price * count * rate
    return _spread(exact)


def _bundle(effect: Bundle, lines: list[PricedLine]) -> list[int]:
    by_sku: dict[str, Units] = {}
    for group in sorted(_units(lines), key=lambda group: -group[0]):  # dearest first
        by_sku.setdefault(lines[group[2]].sku, []).append(group)
    available = {sku: sum(count for _, count, _ in groups) for sku, groups in by_sku.items()}
    sets = min(available.get(sku, 0) // qty for sku, qty in effect.items)
    if sets == 0:
        return [0] * len(lines)
    exact = [Fraction(0)] * len(lines)
    for sku, qty in effect.items:
        for unit_price, count, index in _take(by_sku[sku], sets * qty):
            exact[index] += unit_price * count
    regular = sum(exact, Fraction(0))
    saving = regular - sets * effect.price
    if saving <= 0:
        return [0] * len(lines)
    return _spread([part * saving / regular for part in exact])


def _free_unit(lines: list[PricedLine]) -> list[int]:
    groups = sorted(_units(lines), key=lambda group: group[0])
    exact = [Fraction(0)] * len(lines)
    for unit_price, _, index in _take(groups, 1):
        exact[index] = unit_price
    return _spread(exact)
