"""Bounce-back offers: "20 % off your next purchase for a receipt over 1,500 ₽". A
purchase that meets an offer's condition gives the member a personal coupon of the
offer's campaign (its effect and conditions are the campaign's), valid from the next
day for a number of days. Pure: standard library and the kernel's reader only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kopilka.kernel.reading import Reader, show

OFFER_KEYS = ("code", "name", "coupon", "min_total", "skus", "categories", "locations",
              "valid", "starts_after_days", "lasts_days")  # fmt: skip
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class OfferLine:
    sku: str
    lineage: tuple[str, ...]
    amount: int  # money minor units paid, after discounts


@dataclass(frozen=True, slots=True)
class Offer:
    code: str
    name: str
    coupon: str  # a coupon campaign with personal codes
    min_total: int  # the qualifying lines' money the receipt needs (minor units)
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    locations: frozenset[str] | None
    valid_from: date | None
    valid_until: date | None
    starts_after_days: int  # the coupon's first day: this many days after the purchase's
    lasts_days: int | None  # how many days it is valid from then; None: as its campaign

    def qualifying_spend(self, lines: Sequence[OfferLine]) -> int:
        if self.skus is None and self.categories is None:
            return sum(line.amount for line in lines)
        return sum(
            line.amount for line in lines
            if (self.skus is not None and line.sku in self.skus)
            or (self.categories is not None and any(c in self.categories for c in line.lineage))
        )  # fmt: skip

    def earned(self, lines: Sequence[OfferLine], day: date, location: str | None) -> bool:
        """Whether a receipt of `lines` made on `day` at `location` earns the coupon."""
        if (self.valid_from is not None and day < self.valid_from) or (
            self.valid_until is not None and day > self.valid_until
        ):
            return False
        if self.locations is not None and location not in self.locations:
            return False
        spend = self.qualifying_spend(lines)
        return spend > 0 and spend >= self.min_total

    def window(self, day: date, timezone: str) -> tuple[datetime, datetime | None]:
        """The coupon's window for a purchase on `day`: from local midnight
        `starts_after_days` later, for `lasts_days` days."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(day + timedelta(days=self.starts_after_days), time(), zone)
        end = start + timedelta(days=self.lasts_days) if self.lasts_days else None
        return start, end


def parse_offers(top: Reader, money_digits: int) -> tuple[Offer, ...]:
    offers: list[Offer] = []
    seen: set[str] = set()
    for item in top.records("bounce_back", OFFER_KEYS):
        code = item.code("code")
        if code is None:
            continue
        if code in seen:
            item.report(item.at("code"), f"duplicate bounce-back offer code {show(code)}")
        seen.add(code)
        coupon = item.code("coupon")
        valid_from, valid_until = item.days("valid")
        starts = item.integer("starts_after_days", minimum=0, maximum=MAX_DAYS)
        if coupon is None:
            continue
        offers.append(Offer(
            code=code, name=item.text("name") or code, coupon=coupon,
            min_total=item.minor("min_total", money_digits, unit="money") or 0,
            skus=item.codes("skus"), categories=item.codes("categories"),
            locations=item.codes("locations"), valid_from=valid_from, valid_until=valid_until,
            starts_after_days=1 if starts is None else starts,
            lasts_days=item.integer("lasts_days", minimum=1, maximum=MAX_DAYS),
        ))  # fmt: skip
    return tuple(offers)
