"""Card-linked offers: the pure model — merchants and their locations, offers, a card
transaction matched to a location and judged against each offer (issue 20).

A bank sends its cardholders' card transactions; merchants publish offers; a matching
purchase earns cashback the merchant pays for. Everything that decides a transaction's
outcome is here, as plain functions of plain values, so that the online path (one
transaction at a time, its card's state read from the database) and the batch path (a
day's feed on Dask, each card's state carried through its partition) run the very same
code and give the very same answer.

- **Matching** (`Catalog.match`): the exact merchant-id table first — a (scheme,
  merchant id) that names one location; a merchant id shared by several locations (a
  payment facilitator's) is only narrowed to them — then the descriptor rules (the
  normalised descriptor starts with the rule's words, and the MCC agrees where the rule
  names one; the longest rule wins). Every match names the rule that made it.
- **Judging** (`judge`): an offer's dates, weekdays, hours, amounts, activation,
  targeting (a segment, a radius around the merchant's locations, new or lapsed
  customers), its control group and its limit per card, in that order; the first that
  fails is the reason a support agent reads.
- **Budgets** (`Budget`): an offer's budget is spent in feed order; the transaction that
  reaches it gets what is left, and the offer ends there — money given back by a refund
  or a smaller clearing does not reopen it (so the outcome of a transaction never
  depends on what comes after it).

Money in minor units (int); percentages as Decimal; one rounding per amount, half up.
Coordinates are floats: a distance is geometry, never money.

Pure: the standard library only.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

HUNDRED = Decimal(100)
EARTH_RADIUS_KM = 6371.0088
SCHEMES = ("visa", "mastercard", "mir", "unionpay", "amex", "jcb")


class Kind(StrEnum):
    """What a feed message says happened to a card transaction."""

    AUTHORISATION = "authorisation"  # the card was authorised: provisionally qualified
    CLEARING = "clearing"  # the money moved (48–72 h later): confirmed
    REFUND = "refund"  # money back to the card, linked to its original: clawed back
    REVERSAL = "reversal"  # an authorisation withdrawn before clearing: released


class Reason(StrEnum):
    """Why a transaction did or did not earn an offer's cashback."""

    QUALIFIED = "qualified"
    NOT_STARTED = "offer_not_started"
    ENDED = "offer_ended"
    WRONG_SCHEME = "scheme_not_in_offer"
    WRONG_WEEKDAY = "weekday_not_in_offer"
    OUTSIDE_HOURS = "outside_offer_hours"
    BELOW_MINIMUM = "below_minimum_amount"
    ABOVE_MAXIMUM = "above_maximum_amount"
    NOT_ACTIVATED = "offer_not_activated"
    NOT_IN_SEGMENT = "card_not_in_segment"
    TOO_FAR = "cardholder_outside_radius"
    NOT_NEW = "not_a_new_customer"
    NOT_LAPSED = "not_a_lapsed_customer"
    CONTROL_GROUP = "card_in_control_group"
    LIMIT_REACHED = "limit_per_card_reached"
    BUDGET_SPENT = "offer_budget_spent"


# ---------------------------------------------------------------------------- merchants


@dataclass(frozen=True, slots=True)
class Location:
    """A merchant's shop: its code, the merchant it belongs to, its descriptor and MCC as
    the networks send them, and where it is."""

    code: str
    merchant: str
    descriptor: str = ""
    mcc: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class DescriptorRule:
    """Transactions whose normalised descriptor starts with `words` (and whose MCC is
    `mcc`, when set) are at `location`. Made by an operator, or by a review decision."""

    id: int
    words: tuple[str, ...]
    location: str
    mcc: str | None = None

    def fits(self, words: Sequence[str], mcc: str | None) -> bool:
        if self.mcc is not None and self.mcc != mcc:
            return False
        return tuple(words[: len(self.words)]) == self.words


@dataclass(frozen=True, slots=True)
class Match:
    """Where a transaction was made, and how that was decided: `rule` is `mid:<scheme>:
    <merchant id>` or `descriptor:<rule id>`."""

    location: str
    merchant: str
    rule: str


# Payment facilitators and wallets put their own name before the shop's.
FACILITATOR_PREFIXES = ("SQ", "SQU", "PAYPAL", "PP", "SUMUP", "SUM", "IZ", "YM", "YANDEX",
                        "TST", "GOOGLE", "APPLE", "CLOUDPAYMENTS", "CP", "ROBOKASSA")  # fmt: skip
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def descriptor_words(descriptor: str) -> tuple[str, ...]:
    """A descriptor as comparable words: case and accents folded, punctuation dropped, a
    payment facilitator's prefix (`SQ *`, `PAYPAL *`) dropped, and words of digits only
    (store and terminal numbers, which vary by shop and by day) dropped."""
    folded = unicodedata.normalize("NFKD", descriptor.casefold())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    head, star, tail = folded.partition("*")
    if star and head.strip().upper() in FACILITATOR_PREFIXES:
        folded = tail
    words = [word for word in _NOT_WORD.split(folded.replace("_", " ")) if word]
    return tuple(word.upper() for word in words if not word.isdigit())


@dataclass(frozen=True)
class Catalog:
    """What matching needs: the locations by code, the merchant-id table, and the
    descriptor rules (longest first)."""

    locations: Mapping[str, Location]
    merchant_ids: Mapping[tuple[str, str], tuple[str, ...]]  # (scheme, mid) → locations
    rules: tuple[DescriptorRule, ...] = ()
    _by_first_word: dict[str, list[DescriptorRule]] = field(default_factory=dict, repr=False)
    _by_merchant: dict[str, list[Location]] = field(default_factory=dict, repr=False)
    _words: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _by_word: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for location in self.locations.values():
            self._by_merchant.setdefault(location.merchant, []).append(location)
        ordered = sorted(self.rules, key=lambda rule: (-len(rule.words), rule.id))
        for rule in ordered:
            if rule.words:
                self._by_first_word.setdefault(rule.words[0], []).append(rule)

    def match(self, scheme: str, merchant_id: str | None, descriptor: str,
              mcc: str | None) -> Match | None:  # fmt: skip
        """The location a transaction was made at, or None (kept, counted, and offered to
        the review queue)."""
        candidates: tuple[str, ...] | None = None
        if merchant_id:
            candidates = self.merchant_ids.get((scheme, merchant_id))
            if candidates is not None and len(candidates) == 1:
                return self._at(candidates[0], f"mid:{scheme}:{merchant_id}")
        words = descriptor_words(descriptor)
        for rule in self._by_first_word.get(words[0], ()) if words else ():
            if rule.fits(words, mcc) and (candidates is None or rule.location in candidates):
                return self._at(rule.location, f"descriptor:{rule.id}")
        return None

    def _at(self, location: str, rule: str) -> Match | None:
        found = self.locations.get(location)
        return None if found is None else Match(found.code, found.merchant, rule)

    def suggestions(self, descriptor: str, *, limit: int = 3,
                    least: float = 0.5) -> list[tuple[str, float]]:  # fmt: skip
        """The locations an unmatched descriptor most resembles (words in common over
        words in either, at least `least`), best first: what the review queue offers."""
        words = set(descriptor_words(descriptor))
        if not words:
            return []
        index = self._word_index()
        # a location with no word in common scores 0: only those sharing a word are scored
        sharing = {code for word in words for code in index.get(word, ())}
        codes = sharing if least > 0 else self.locations
        scored = []
        for code in codes:
            theirs = self._words[code]
            if theirs:
                score = len(words & theirs) / len(words | theirs)
                if score >= least:
                    scored.append((code, round(score, 3)))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[:limit]

    def _word_index(self) -> dict[str, list[str]]:
        """Each location's descriptor words, and the locations by word: made at the first
        suggestion (the review queue's), not with every catalog."""
        if len(self._words) != len(self.locations):
            by_word: dict[str, list[str]] = {}
            for location in self.locations.values():
                words = frozenset(descriptor_words(location.descriptor))
                self._words[location.code] = words
                for word in words:
                    by_word.setdefault(word, []).append(location.code)
            self._by_word.clear()
            self._by_word.update(by_word)
        return self._by_word

    def merchant_locations(self, merchant: str) -> list[Location]:
        """The merchant's locations, in the catalog's order (an index: a radius is judged
        on every matched purchase)."""
        return self._by_merchant.get(merchant, [])


# ------------------------------------------------------------------------------- offers


@dataclass(frozen=True, slots=True)
class Targeting:
    """Who may earn: a segment's cards, cardholders living within `radius_km` of one of
    the merchant's locations, only new customers (no purchase at the merchant in the
    last `new_within_days`), only lapsed ones (none in the last `lapsed_days`)."""

    segment: str | None = None
    radius_km: Decimal | None = None
    new_customers: bool = False
    new_within_days: int = 365
    lapsed_days: int | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """A merchant's card-linked offer. `percent` or `fixed` (minor units) is the cashback;
    `fee_percent` of the spend and `fee_fixed` per transaction are the operator's fee.
    `until` is the last day; `hours` a half-open local time window [from, until)."""

    code: str
    merchant: str
    starts: date
    until: date
    percent: Decimal | None = None
    fixed: int | None = None
    weekdays: frozenset[int] | None = None  # ISO: 1 Monday … 7 Sunday
    hours: tuple[time, time] | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    max_cashback: int | None = None  # per transaction
    schemes: frozenset[str] | None = None
    activation_required: bool = False
    limit_per_card: int | None = None
    return_days: int = 30
    budget: int | None = None
    fee_percent: Decimal = Decimal(0)
    fee_fixed: int = 0
    targeting: Targeting = Targeting()
    control_percent: Decimal = Decimal(0)

    def cashback(self, amount: int) -> int:
        """What a transaction of `amount` earns (before the budget)."""
        if self.fixed is not None:
            earned = self.fixed
        else:
            earned = _percent_of(amount, self.percent or Decimal(0))
        if self.max_cashback is not None:
            earned = min(earned, self.max_cashback)
        return max(0, min(earned, amount))

    def fee(self, amount: int) -> int:
        return _percent_of(amount, self.fee_percent) + self.fee_fixed


def _percent_of(amount: int, percent: Decimal) -> int:
    """`amount` × `percent` / 100 in whole minor units, half away from zero — Decimal's
    ROUND_HALF_UP, in integers: the batch works this out for every claim."""
    numerator, denominator = _ratio(percent)
    product = amount * numerator
    magnitude = (2 * abs(product) + denominator) // (2 * denominator)
    return magnitude if product >= 0 else -magnitude


def _ratio(percent: Decimal) -> tuple[int, int]:
    """A percent as an exact fraction of one: numerator, denominator. Kept by the Decimal
    object's identity (an offer's percent lives as long as the offer; hashing a Decimal
    costs more than the arithmetic): an entry is used only for the very object it was
    made of, so an id taken over by another object is worked out again."""
    kept = _RATIOS.get(id(percent))
    if kept is None or kept[0] is not percent:
        if len(_RATIOS) >= 65_536:
            _RATIOS.clear()
        numerator, denominator = percent.as_integer_ratio()
        kept = _RATIOS[id(percent)] = (percent, numerator, denominator * 100)
    return kept[1], kept[2]


_RATIOS: dict[int, tuple[Decimal, int, int]] = {}


def in_control_group(offer: Offer, card: str) -> bool:
    """Whether `card` is held out of `offer` (shown nothing, earns nothing) to measure the
    sales the offer brings: a stable hash of the two, so the online and the batch path,
    and every day of the campaign, agree."""
    if offer.control_percent <= 0:
        return False
    digest = hashlib.sha256(f"{offer.code}\x1f{card}".encode()).digest()
    share = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
    return share * HUNDRED < offer.control_percent


# -------------------------------------------------------------------------------- cards


@dataclass(frozen=True, slots=True)
class Card:
    """A card as the bank registered it: a token (never the number), the segments its
    holder is in, and where the holder lives (for a radius)."""

    token: str
    scheme: str
    segments: frozenset[str] = frozenset()
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class CardState:
    """What earlier transactions left on a card: offers activated (and when), qualified
    uses per offer, and the first and last purchase per merchant."""

    activated: dict[str, datetime] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)
    seen: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)

    def saw(self, merchant: str, at: datetime) -> None:
        first, last = self.seen.get(merchant, (at, at))
        self.seen[merchant] = (min(first, at), max(last, at))


@dataclass(frozen=True, slots=True)
class Purchase:
    """The facts of a card purchase that judging reads."""

    card: Card
    amount: int
    at: datetime  # the local time of the purchase, with its offset
    location: str
    merchant: str


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def judge(offer: Offer, purchase: Purchase, state: CardState,
          locations: Sequence[Location]) -> Reason:  # fmt: skip
    """Whether `purchase` earns `offer` (before the budget), or the first reason it does
    not. `state` is the card's before this purchase; `locations` the merchant's."""
    for reason in (_timing(offer, purchase), _amount(offer, purchase.amount)):
        if reason is not None:
            return reason
    if offer.activation_required:
        activated = state.activated.get(offer.code)
        if activated is None or activated > purchase.at:
            return Reason.NOT_ACTIVATED
    reason = _targeting(offer.targeting, purchase, state, locations)
    if reason is not None:
        return reason
    if in_control_group(offer, purchase.card.token):
        return Reason.CONTROL_GROUP
    if offer.limit_per_card is not None and state.uses.get(offer.code, 0) >= offer.limit_per_card:
        return Reason.LIMIT_REACHED
    return Reason.QUALIFIED


def _timing(offer: Offer, purchase: Purchase) -> Reason | None:
    day = purchase.at.date()
    if day < offer.starts:
        return Reason.NOT_STARTED
    if day > offer.until:
        return Reason.ENDED
    if offer.schemes is not None and purchase.card.scheme not in offer.schemes:
        return Reason.WRONG_SCHEME
    if offer.weekdays is not None and day.isoweekday() not in offer.weekdays:
        return Reason.WRONG_WEEKDAY
    if offer.hours is not None:
        start, end = offer.hours
        moment = purchase.at.time().replace(tzinfo=None)
        inside = start <= moment < end if start < end else (moment >= start or moment < end)
        if not inside:
            return Reason.OUTSIDE_HOURS
    return None


def _amount(offer: Offer, amount: int) -> Reason | None:
    if offer.min_amount is not None and amount < offer.min_amount:
        return Reason.BELOW_MINIMUM
    if offer.max_amount is not None and amount > offer.max_amount:
        return Reason.ABOVE_MAXIMUM
    return None


def _targeting(target: Targeting, purchase: Purchase, state: CardState,
               locations: Sequence[Location]) -> Reason | None:  # fmt: skip
    card = purchase.card
    if target.segment is not None and target.segment not in card.segments:
        return Reason.NOT_IN_SEGMENT
    if target.radius_km is not None and not lives_near(card, locations, target.radius_km):
        return Reason.TOO_FAR
    last = state.seen.get(purchase.merchant, (None, None))[1]
    if target.new_customers and _since(last, purchase.at, target.new_within_days):
        return Reason.NOT_NEW
    lapsed = target.lapsed_days
    if lapsed is not None and (last is None or _since(last, purchase.at, lapsed)):
        return Reason.NOT_LAPSED
    return None


def _since(last: datetime | None, at: datetime, days: int) -> bool:
    """Whether `last` falls within the `days` before `at`."""
    return last is not None and last > at - timedelta(days=days)


def lives_near(card: Card, locations: Sequence[Location], radius_km: Decimal) -> bool:
    if card.latitude is None or card.longitude is None:
        return False  # nowhere known: not shown a local offer
    return any(
        distance_km(card.latitude, card.longitude, spot.latitude, spot.longitude)
        <= float(radius_km)
        for spot in locations
        if spot.latitude is not None and spot.longitude is not None
    )


# ------------------------------------------------------------------------------ budgets


@dataclass
class Budget:
    """An offer's budget as the feed spends it, in feed order: `spent` of `total` (None:
    no budget); once `ended`, nothing more is granted, whatever is given back."""

    total: int | None
    spent: int = 0
    ended: bool = False

    def grant(self, wanted: int) -> int:
        """How much of `wanted` the budget pays (all, what is left, or nothing)."""
        if self.total is None:
            self.spent += wanted
            return wanted
        if self.ended:
            return 0
        granted = min(wanted, self.total - self.spent)
        self.spent += granted
        if self.spent >= self.total:
            self.ended = True
        return granted

    def give_back(self, amount: int) -> None:
        self.spent -= amount
