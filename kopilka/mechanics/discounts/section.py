"""The `discounts`, `discount_limits` and `discount_cards` sections of a program file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import Enum
from types import MappingProxyType

from kopilka.kernel.program import Conditions
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.discounts.model import (
    HUNDRED,
    Accumulative,
    AmountOff,
    Bundle,
    BuyGet,
    CrossCondition,
    Discount,
    DiscountCard,
    DiscountLimits,
    DiscountSettings,
    Effect,
    PercentOff,
)

EFFECT_KEYS = (
    "percent",
    "amount",
    "accumulative",
    "buy_get",
    "nth_item",
    "cheapest_free",
    "bundle",
)
DISCOUNT_KEYS = (
    "code",
    "name",
    "when",
    *EFFECT_KEYS,
    "stacking",
    "priority",
    "max_amount",
    "earn_points",
)
# a discount's `when` has every key of a rule's, and these
DISCOUNT_WHEN_KEYS = ("first_purchase", "bought_at", "cards")
LIMIT_KEYS = ("receipt_percent", "line_percent")
CARD_KEYS = ("code", "name", "fee", "valid_days")
BAND_KEYS = ("spend", "percent")
BUY_GET_KEYS = ("buy", "get", "percent")
NTH_ITEM_KEYS = ("n", "percent")
CHEAPEST_FREE_KEYS = ("min_items",)
BUNDLE_KEYS = ("items", "price")
BUNDLE_ITEM_KEYS = ("sku", "qty")
BOUGHT_AT_KEYS = ("partners", "days")
MAX_DAYS = 36_500  # a hundred years: longer is a mistake, and overflows dates


class Stacking(Enum):
    STACKABLE = "stackable"  # adds to the other stackable discounts
    EXCLUSIVE = "exclusive"  # applies alone, when it gives more than the stack


class DiscountContext:
    """What discounts may refer to: the rules' `when` reader, partners, products, cards."""

    def __init__(
        self, *, money_digits: int, when_keys: Sequence[str],
        conditions: Callable[[Reader | None], Conditions], partners: frozenset[str],
        skus: frozenset[str],
    ) -> None:  # fmt: skip
        self.money_digits = money_digits
        self.when_keys = (*when_keys, *DISCOUNT_WHEN_KEYS)
        self.conditions = conditions
        self.partners = partners
        self.skus = skus


def parse_discount_settings(top: Reader, context: DiscountContext) -> DiscountSettings:
    cards = _cards(top, context.money_digits)
    return DiscountSettings(
        discounts=tuple(_discounts(top, context, frozenset(cards))),
        limits=_limits(top),
        cards=MappingProxyType(cards),
    )


def _limits(top: Reader) -> DiscountLimits:
    section = top.mapping("discount_limits", LIMIT_KEYS)
    if section is None:
        return DiscountLimits()
    receipt = section.decimal("receipt_percent", minimum=Decimal(0), maximum=HUNDRED)
    line = section.decimal("line_percent", minimum=Decimal(0), maximum=HUNDRED)
    return DiscountLimits(
        receipt_percent=HUNDRED if receipt is None else receipt,
        line_percent=HUNDRED if line is None else line,
    )


def _cards(top: Reader, money_digits: int) -> dict[str, DiscountCard]:
    cards: dict[str, DiscountCard] = {}
    for item in top.records("discount_cards", CARD_KEYS):
        code = item.code("code")
        fee = item.minor("fee", money_digits, unit="money", required=True)
        valid_days = item.integer("valid_days", minimum=1, maximum=MAX_DAYS)
        if code in cards:
            item.report(item.at("code"), f"duplicate discount card code {show(code)}")
        if code is not None and fee is not None:
            cards[code] = DiscountCard(code, item.text("name") or code, fee, valid_days)
    return cards


def _discounts(top: Reader, context: DiscountContext, cards: frozenset[str]) -> list[Discount]:
    discounts: list[Discount] = []
    seen: set[str] = set()
    for item in top.records("discounts", DISCOUNT_KEYS):
        code = item.code("code")
        if code in seen:
            item.report(item.at("code"), f"duplicate discount code {show(code)}")
        seen.add(code or "")
        when_reader = item.mapping("when", context.when_keys)
        effect = _effect(item, context)
        discount = _discount(item, code, effect, when_reader, context, cards)
        if discount is not None:
            discounts.append(discount)
    return discounts


def _discount(
    item: Reader, code: str | None, effect: Effect | None, when: Reader | None,
    context: DiscountContext, cards: frozenset[str],
) -> Discount | None:  # fmt: skip
    first_purchase = bool(when.boolean("first_purchase")) if when else False
    bought_at = _bought_at(when, context) if when else None
    card_codes = when.codes("cards") if when else None
    for unknown in sorted((card_codes or frozenset()) - cards):
        assert when is not None
        when.report(when.at("cards"), f"unknown discount card {show(unknown)} "
                                      "(declare it under discount_cards)")  # fmt: skip
    conditions = context.conditions(when)
    stacking = item.choice("stacking", Stacking) or Stacking.STACKABLE
    max_amount = item.minor("max_amount", context.money_digits, unit="money")
    if code is None or effect is None:
        return None
    return Discount(
        code=code,
        effect=effect,
        when=conditions,
        name=item.text("name"),
        first_purchase=first_purchase,
        bought_at=bought_at,
        cards=card_codes,
        exclusive=stacking is Stacking.EXCLUSIVE,
        priority=item.integer("priority") or 0,
        max_amount=max_amount,
        earn_points=bool(item.boolean("earn_points")),
    )


def _bought_at(when: Reader, context: DiscountContext) -> CrossCondition | None:
    section = when.mapping("bought_at", BOUGHT_AT_KEYS)
    if section is None:
        return None
    partners = section.codes("partners")
    days = section.integer("days", minimum=1, maximum=MAX_DAYS) or 30
    if partners is None:
        section.report(section.at("partners"), "is required: where the member bought before")
        return None
    for unknown in sorted(partners - context.partners):
        section.report(section.at("partners"), f"unknown partner {show(unknown)}")
    return CrossCondition(partners, days)


def _effect(item: Reader, context: DiscountContext) -> Effect | None:
    given = [key for key in EFFECT_KEYS if item.has(key)]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        item.report(item.loc, f"give exactly one effect ({'|'.join(EFFECT_KEYS)}); found {what}")
        return None
    key = given[0]
    if key == "percent":
        percent = item.decimal("percent", minimum=Decimal(0), maximum=HUNDRED)
        return PercentOff(percent) if percent is not None else None
    if key == "amount":
        amount = item.minor("amount", context.money_digits, unit="money")
        return AmountOff(amount) if amount else None
    if key == "accumulative":
        return _accumulative(item, context.money_digits)
    if key == "bundle":
        return _bundle(item, context)
    return _unit_deal(item, key)


def _accumulative(item: Reader, money_digits: int) -> Accumulative | None:
    bands: list[tuple[int, Decimal]] = []
    for band in item.records("accumulative", BAND_KEYS, code_key="spend"):
        spend = band.minor("spend", money_digits, unit="money", required=True)
        percent = band.decimal("percent", required=True, minimum=Decimal(0), maximum=HUNDRED)
        if spend is None or percent is None:
            continue
        if bands and spend <= bands[-1][0]:
            band.report(band.at("spend"), "bands must rise: each spend above the one before")
        bands.append((spend, percent))
    if not bands:
        item.report(item.at("accumulative"), "needs at least one band {spend, percent}")
        return None
    return Accumulative(tuple(bands))


def _unit_deal(item: Reader, key: str) -> BuyGet | None:
    """buy_get {buy, get, percent}, nth_item {n, percent}, cheapest_free {min_items}."""
    if key == "buy_get":
        section = item.mapping(key, BUY_GET_KEYS)
        assert section is not None
        buy = section.integer("buy", required=True, minimum=1)
        get = section.integer("get", required=True, minimum=1)
        percent = _deal_percent(section)
        if buy is None or get is None or percent is None:
            return None
        return BuyGet(buy, get, percent, stated=key)
    if key == "nth_item":
        section = item.mapping(key, NTH_ITEM_KEYS)
        assert section is not None
        n = section.integer("n", required=True, minimum=2)
        percent = _deal_percent(section)
        return None if n is None or percent is None else BuyGet(n - 1, 1, percent, stated=key)
    section = item.mapping(key, CHEAPEST_FREE_KEYS)
    assert section is not None
    least = section.integer("min_items", required=True, minimum=2)
    return None if least is None else BuyGet(least - 1, 1, HUNDRED, once=True, stated=key)


def _deal_percent(section: Reader) -> Decimal | None:
    if not section.has("percent"):
        return HUNDRED  # "get one free"
    return section.decimal("percent", minimum=Decimal(0), maximum=HUNDRED)


def _bundle(item: Reader, context: DiscountContext) -> Bundle | None:
    section = item.mapping("bundle", BUNDLE_KEYS)
    assert section is not None
    price = section.minor("price", context.money_digits, unit="money", required=True)
    components: dict[str, int] = {}
    for part in section.records("items", BUNDLE_ITEM_KEYS, code_key="sku", required=True):
        sku = part.text("sku", required=True)
        qty = part.integer("qty", minimum=1) or 1
        if sku is not None and sku not in context.skus:
            part.report(part.at("sku"), f"unknown sku {show(sku)} (not in the catalog)")
        if sku is not None:
            components[sku] = components.get(sku, 0) + qty
    if sum(components.values()) < 2:  # one unit of one sku is no bundle
        section.report(section.at("items"), "a bundle needs two units or more")
        return None
    return Bundle(tuple(components.items()), price) if price is not None else None
