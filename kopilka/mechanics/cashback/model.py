"""Cashback: part of the price returned as money, in its own wallet (issue 7).

The `cashback` section of a program file declares campaigns; each campaign that matches a
receipt gives a percent of the money paid — the percent of the band the paid amount falls
in ("the more you spend, the higher the %"). Conditions narrow a campaign to a payment
method, card BIN ranges, partners, locations and dates. Amounts are integers in the
currency's minor units, percents `Decimal`; a campaign's award is rounded down to the
minor unit and capped per receipt. A campaign's total `budget` is enforced where the money
is written (the store grants only what is left), not here: this module is pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from kopilka.kernel.errors import KopilkaError
from kopilka.kernel.reading import Reader, show

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

CASHBACK_KEYS = ("pending_days", "min_payout", "campaigns")
CAMPAIGN_KEYS = (
    "code",
    "name",
    "bands",
    "payment",
    "partners",
    "locations",
    "between",
    "budget",
    "max_per_receipt",
)
BAND_KEYS = ("min", "percent")
PAYMENT_KEYS = ("methods", "bins")
_BIN_PREFIX = re.compile(r"^[0-9]{1,8}$")
_BIN_RANGE = re.compile(r"^([0-9]{1,8})-([0-9]{1,8})$")


class InsufficientCashback(KopilkaError):
    """A payout asks for more cashback than the member has available."""

    code = "insufficient_cashback"
    title = "Not enough cashback is available"


@dataclass(frozen=True, slots=True)
class Band:
    """From `min` paid (minor units, inclusive) on, `percent` of the paid amount."""

    min: int
    percent: Decimal


@dataclass(frozen=True, slots=True)
class BinRange:
    """Card BINs whose first `len(low)` digits lie in `low`..`high` (a prefix: low == high)."""

    low: str
    high: str

    def contains(self, card_bin: str) -> bool:
        head = card_bin[: len(self.low)]
        return len(head) == len(self.low) and self.low <= head <= self.high

    def __str__(self) -> str:
        return self.low if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class Campaign:
    code: str
    name: str
    bands: tuple[Band, ...]  # ascending by `min`
    methods: frozenset[str] | None = None  # payment methods; None: any
    bins: tuple[BinRange, ...] | None = None  # card BINs; None: any (or no card)
    partners: frozenset[str] | None = None
    locations: frozenset[str] | None = None
    starts: date | None = None  # local dates, both inclusive
    ends: date | None = None
    budget: int | None = None  # the most the campaign pays in all (minor units)
    max_per_receipt: int | None = None

    def band_for(self, paid: int) -> Band | None:
        """The band `paid` falls in: the last whose `min` it reaches."""
        found = None
        for band in self.bands:
            if paid >= band.min:
                found = band
        return found

    def applies(self, receipt: PaidReceipt) -> bool:
        """Every condition the campaign gives holds for the receipt."""
        day = receipt.at.date()
        return (
            (self.methods is None or receipt.method in self.methods)
            and (self.bins is None or _bin_matches(self.bins, receipt.card_bin))
            and (self.partners is None or receipt.partner in self.partners)
            and (self.locations is None or receipt.location in self.locations)
            and (self.starts is None or day >= self.starts)
            and (self.ends is None or day <= self.ends)
        )


@dataclass(frozen=True, slots=True)
class CashbackSettings:
    """What the program's `cashback` section declares."""

    pending_days: int = 0  # cashback becomes available (payable) this many days later
    min_payout: int = 0  # the least a payout may ask for (minor units)
    campaigns: tuple[Campaign, ...] = ()

    def campaign(self, code: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.code == code), None)


@dataclass(frozen=True, slots=True)
class PaidReceipt:
    """What cashback looks at in a receipt; `at` is local (the location's time zone)."""

    paid: int
    location: str | None
    partner: str | None
    method: str | None
    card_bin: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CashbackAward:
    """One campaign's cashback for a receipt: `percent` of `base`, rounded down, capped."""

    campaign: str
    percent: Decimal
    base: int
    amount: int


def compute_cashback(
    settings: CashbackSettings | None, *, paid: int, location: str | None, partner: str | None,
    method: str | None, card_bin: str | None, at: datetime,
) -> list[CashbackAward]:  # fmt: skip
    """Each matching campaign's award for a receipt paid `paid` with money (none of 0)."""
    if settings is None or paid <= 0:
        return []
    receipt = PaidReceipt(paid, location, partner, method, card_bin, at)
    awards = []
    for campaign in settings.campaigns:
        band = campaign.band_for(paid) if campaign.applies(receipt) else None
        if band is None:
            continue
        amount = percent_of(paid, band.percent)
        if campaign.max_per_receipt is not None:
            amount = min(amount, campaign.max_per_receipt)
        if amount > 0:
            awards.append(CashbackAward(campaign.code, band.percent, paid, amount))
    return awards


def percent_of(amount: int, percent: Decimal) -> int:
    """`percent` % of `amount`, rounded down to the minor unit (exact: no float)."""
    return math.floor(Fraction(amount) * Fraction(percent) / 100)


def share_of(amount: int, part: int, whole: int) -> int:
    """`amount` × part / whole, rounded down; all of `amount` once `part` reaches `whole`."""
    if whole <= 0 or part >= whole:
        return amount
    return amount * max(part, 0) // whole


def show_percent(percent: Decimal) -> str:
    """3 → "3", 2.50 → "2.5": a percent as people write it (never an exponent)."""
    return format(percent.normalize(), "f")


def _bin_matches(ranges: tuple[BinRange, ...], card_bin: str | None) -> bool:
    return card_bin is not None and any(r.contains(card_bin) for r in ranges)


# — the program file —


def cashback_of(program: Program) -> CashbackSettings | None:
    """The program's `cashback` section (registered in `kopilka.sections`), if it has one."""
    found = program.sections.get("cashback")
    return found if isinstance(found, CashbackSettings) else None


def parse_cashback(top: Reader, money_digits: int) -> CashbackSettings | None:
    """The `cashback` section of a program file, or None when there is none."""
    section = top.mapping("cashback", CASHBACK_KEYS)
    if section is None:
        return None
    known = _known_places(top.data)
    campaigns: list[Campaign] = []
    codes: set[str] = set()
    for item in section.records("campaigns", CAMPAIGN_KEYS, required=True):
        campaign = _campaign(item, money_digits, known)
        if campaign is None:
            continue
        if campaign.code in codes:
            item.report(item.at("code"), f"duplicate campaign code {show(campaign.code)}")
        codes.add(campaign.code)
        campaigns.append(campaign)
    if section.raw("campaigns") == []:
        section.report(section.at("campaigns"), "is empty: give at least one campaign")
    return CashbackSettings(
        pending_days=_or(section.integer("pending_days", minimum=0, maximum=3650), 0),
        min_payout=_or(section.minor("min_payout", money_digits, unit="money"), 0),
        campaigns=tuple(campaigns),
    )


def _campaign(
    item: Reader, money_digits: int, known: Mapping[str, frozenset[str] | None]
) -> Campaign | None:
    code = item.code("code")
    bands = _bands(item, money_digits)
    methods, bins = _payment(item)
    partners = _references(item, "partners", known)
    locations = _references(item, "locations", known)
    starts, ends = _between(item)
    budget = _positive_money(item, "budget", money_digits)
    max_per_receipt = _positive_money(item, "max_per_receipt", money_digits)
    if code is None or bands is None:
        return None
    return Campaign(code, item.text("name") or code, bands, methods, bins, partners,
                    locations, starts, ends, budget, max_per_receipt)  # fmt: skip


def _bands(item: Reader, money_digits: int) -> tuple[Band, ...] | None:
    bands: list[Band] = []
    for band in item.records("bands", BAND_KEYS, code_key="min", required=True):
        low = band.minor("min", money_digits, unit="money", required=True)
        percent = band.decimal("percent", required=True, minimum=Decimal(0),
                               maximum=Decimal(100), what="a percent")  # fmt: skip
        if low is None or percent is None:
            continue
        if bands and low <= bands[-1].min:
            band.report(band.at("min"), "bands must ascend: each min above the one before")
            continue
        bands.append(Band(low, percent))
    if item.raw("bands") == []:
        item.report(item.at("bands"), "is empty: give at least one band")
    return tuple(bands) or None


def _payment(item: Reader) -> tuple[frozenset[str] | None, tuple[BinRange, ...] | None]:
    payment = item.mapping("payment", PAYMENT_KEYS)
    if payment is None:
        return None, None
    if not payment.has("methods") and not payment.has("bins"):
        payment.report(payment.loc, "give methods, bins, or both")
    methods = payment.codes("methods")
    items = payment.list("bins")
    if items is None:
        return methods, None
    if not items:
        payment.report(payment.at("bins"), "is empty; leave it out to match every card")
    ranges = [r for loc, raw in items if (r := _bin_range(payment, loc, raw)) is not None]
    return methods, tuple(ranges)


def _bin_range(payment: Reader, loc: str, raw: object) -> BinRange | None:
    """ "427600" (a prefix) or "220000-220499" (a range of equally long prefixes)."""
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if text is not None and _BIN_PREFIX.match(text):
        return BinRange(text, text)
    match = _BIN_RANGE.match(text) if text is not None else None
    if match is None:
        payment.report(loc, f"{show(raw)} is not a BIN prefix (1–8 digits) or a range "
                            "of them ('220000-220499')")  # fmt: skip
        return None
    low, high = match[1], match[2]
    if len(low) != len(high):
        payment.report(loc, f"{show(raw)}: both ends of a BIN range need as many digits")
        return None
    if low > high:
        payment.report(loc, f"{show(raw)}: the range's start is above its end")
        return None
    return BinRange(low, high)


def _references(
    item: Reader, key: str, known: Mapping[str, frozenset[str] | None]
) -> frozenset[str] | None:
    codes = item.codes(key)
    names = known.get(key)
    if codes is not None and names is not None:
        what = "partner" if key == "partners" else "location"
        for unknown in sorted(codes - names):
            item.report(item.at(key), f"unknown {what} {show(unknown)}")
    return codes


def _known_places(data: Mapping[object, object]) -> dict[str, frozenset[str] | None]:
    """The partner and location codes the program file declares (read leniently: the
    partners section reports its own mistakes); None where they can't be told."""
    raw = data.get("partners")
    if raw is None:
        return {"partners": frozenset(), "locations": frozenset()}
    if not isinstance(raw, list):
        return {"partners": None, "locations": None}
    partners, locations = set(), set()
    for partner in raw:
        if isinstance(partner, Mapping):
            partners.add(partner.get("code"))
            places = partner.get("locations")
            for place in places if isinstance(places, list) else ():
                if isinstance(place, Mapping):
                    locations.add(place.get("code"))
    return {
        "partners": frozenset(p for p in partners if isinstance(p, str)),
        "locations": frozenset(p for p in locations if isinstance(p, str)),
    }


def _between(item: Reader) -> tuple[date | None, date | None]:
    section = item.mapping("between", ("from", "to"))
    if section is None:
        return None, None
    start, end = section.day("from"), section.day("to")
    if not section.has("from") and not section.has("to"):
        section.report(section.loc, "give from, to, or both")
    if start is not None and end is not None and start > end:
        section.report(section.loc, f"from {start} is after to {end}")
    return start, end


def _positive_money(item: Reader, key: str, money_digits: int) -> int | None:
    amount = item.minor(key, money_digits, unit="money")
    if amount == 0:
        item.report(item.at(key), "must be more than 0 (leave it out for no limit)")
        return None
    return amount


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
