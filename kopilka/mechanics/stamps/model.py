"""Stamp cards: "buy 5 coffees, the 6th is free".

A card gives a stamp for each qualifying receipt, unit or amount of qualifying spend;
at `stamps` stamps the member gets the card's reward and the card starts again. What a
receipt earns on a card and where the card stands after it are worked out here, from
plain values: this module is pure (standard library and the kernel's reader only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from kopilka.kernel.reading import Reader, show

CARD_KEYS = ("code", "name", "stamps", "per", "amount", "skus", "categories", "min_spend",
             "max_per_receipt", "valid", "reward", "on_refund")  # fmt: skip
REWARD_KEYS = ("points", "coupon", "note")
MAX_NOTE = 200  # what the reward is, as the cashier says it
MAX_STAMPS = 1000  # a card of more stamps than this is a typo, not a promotion


class StampPer(StrEnum):
    """What earns a stamp: a qualifying receipt, each whole unit, or each `amount` spent."""

    RECEIPT = "receipt"
    UNIT = "unit"
    AMOUNT = "amount"


class OnRefund(StrEnum):
    """A refund takes its stamps back; a reward those stamps completed is taken back too
    (`claw_back`: the member's card owes the stamps until new ones make up for it) or
    kept (`keep`)."""

    CLAW_BACK = "claw_back"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class StampReward:
    points: int | None = None  # point minor units
    coupon: str | None = None  # a coupon campaign's code: one personal code issued
    note: str | None = None  # what it is in words ("a free coffee")


@dataclass(frozen=True, slots=True)
class StampLine:
    """What a stamp card needs of a receipt's line."""

    sku: str
    categories: tuple[str, ...]  # its category and the categories above it
    qty: Decimal
    amount: int  # money minor units the member paid for it (after discounts)


@dataclass(frozen=True, slots=True)
class StampCard:
    code: str
    name: str
    stamps: int  # how many make a reward
    per: StampPer
    amount: int | None  # money minor units a stamp costs (`per: amount`)
    skus: frozenset[str] | None  # None: any product (unless `categories` narrows it)
    categories: frozenset[str] | None
    min_spend: int  # qualifying money a receipt needs before it earns anything
    max_per_receipt: int | None
    valid_from: date | None
    valid_until: date | None  # the last day stamps are given
    reward: StampReward
    on_refund: OnRefund

    def qualifies(self, line: StampLine) -> bool:
        if self.skus is None and self.categories is None:
            return True
        in_skus = self.skus is not None and line.sku in self.skus
        in_categories = self.categories is not None and any(
            category in self.categories for category in line.categories
        )
        return in_skus or in_categories

    def earned(self, lines: Sequence[StampLine], day: date) -> int:
        """The stamps a receipt of `lines` made on `day` earns on this card."""
        if (self.valid_from is not None and day < self.valid_from) or (
            self.valid_until is not None and day > self.valid_until
        ):
            return 0
        # a line given free (a reward's coupon took all of it) earns nothing: the free
        # coffee is no stamp towards the next (Odoo counted it, and paid out early)
        qualifying = [line for line in lines if line.amount > 0 and self.qualifies(line)]
        spend = sum(line.amount for line in qualifying)
        if not qualifying or spend <= 0 or spend < self.min_spend:
            return 0
        if self.per is StampPer.RECEIPT:
            stamps = 1
        elif self.per is StampPer.UNIT:
            stamps = int(sum(line.qty for line in qualifying))  # whole units: 0.5 + 0.5 is one
        else:
            assert self.amount is not None  # the section requires it for `per: amount`
            stamps = spend // self.amount
        return min(stamps, self.max_per_receipt) if self.max_per_receipt else stamps


def advance(card: StampCard, before: int, earned: int) -> tuple[int, int]:
    """The rewards `earned` stamps complete on a card that held `before`, and the stamps
    it holds after them (the card starts again after each reward). `before` may be
    negative: stamps a refund clawed back after their reward was given."""
    total = before + earned
    if total < card.stamps:
        return 0, total
    return total // card.stamps, total % card.stamps


def to_go(card: StampCard, held: int) -> int:
    """Stamps the card still needs before its next reward (more than `stamps` while it
    owes stamps a refund clawed back)."""
    return card.stamps - held


def message(card: StampCard, held: int, rewards: int, reward_words: str) -> str:
    """What the cashier reads out: "Coffee: 5 of 6 — 1 more to a free coffee"."""
    if rewards:
        given = reward_words if rewards == 1 else f"{rewards} × {reward_words}"
        return f"{card.name}: {given} given; the card starts again ({held} of {card.stamps})"
    if held < 0:
        return (f"{card.name}: owes {-held} stamps a refund took back; "
                f"{to_go(card, held)} more to {reward_words}")  # fmt: skip
    return f"{card.name}: {held} of {card.stamps} — {to_go(card, held)} more to {reward_words}"


# — the section of the program file —


def parse_stamp_cards(top: Reader, point_digits: int, money_digits: int) -> tuple[StampCard, ...]:
    cards: list[StampCard] = []
    codes: set[str] = set()
    for item in top.records("stamp_cards", CARD_KEYS):
        code = item.code("code")
        if code is None:
            continue
        if code in codes:
            item.report(item.at("code"), f"duplicate stamp card code {show(code)}")
        codes.add(code)
        card = _card(item, code, point_digits, money_digits)
        if card is not None:
            cards.append(card)
    return tuple(cards)


def _card(item: Reader, code: str, point_digits: int, money_digits: int) -> StampCard | None:
    money = "money"
    stamps = item.integer("stamps", minimum=1, maximum=MAX_STAMPS, required=True)
    per = item.choice("per", StampPer, required=True)
    amount = item.minor("amount", money_digits, unit=money)
    if per is StampPer.AMOUNT and not amount:
        item.report(item.at("amount"), "is required and more than 0 with per: amount")
    elif per is not None and per is not StampPer.AMOUNT and item.has("amount"):
        item.report(item.at("amount"), f"does not apply to per: {per.value}")
    valid_from, valid_until = item.days("valid")
    reward = _reward(item, point_digits)
    if stamps is None or per is None or reward is None:
        return None
    return StampCard(
        code=code,
        name=item.text("name") or code,
        stamps=stamps,
        per=per,
        amount=amount if per is StampPer.AMOUNT else None,
        skus=item.codes("skus"),
        categories=item.codes("categories"),
        min_spend=item.minor("min_spend", money_digits, unit=money) or 0,
        max_per_receipt=item.integer("max_per_receipt", minimum=1),
        valid_from=valid_from,
        valid_until=valid_until,
        reward=reward,
        on_refund=item.choice("on_refund", OnRefund) or OnRefund.CLAW_BACK,
    )


def _reward(item: Reader, point_digits: int) -> StampReward | None:
    reward = item.mapping("reward", REWARD_KEYS, required=True)
    if reward is None:
        return None
    if reward.has("points") == reward.has("coupon"):
        reward.report(reward.loc, "give exactly one of points or coupon")
        return None
    note = reward.text("note", max_length=MAX_NOTE)
    if reward.has("points"):
        points = reward.minor("points", point_digits, unit="points", required=True)
        return StampReward(points=points, note=note) if points else None
    coupon = reward.code("coupon")
    return StampReward(coupon=coupon, note=note) if coupon else None
