"""Reading what the API is sent — a merchant with its locations, an offer, a card, a
feed message — into the model's values, every mistake named with its place.

Pure: the standard library and the kernel's reader only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.card_offers.feed import Message
from kopilka.mechanics.card_offers.model import SCHEMES, Kind, Offer, Targeting

MERCHANT_KEYS = ("name", "locations")
LOCATION_KEYS = ("code", "descriptor", "mcc", "latitude", "longitude", "address", "merchant_ids")
OFFER_KEYS = ("merchant", "starts", "until", "cashback", "max_cashback", "weekdays", "hours",
              "min_amount", "max_amount", "schemes", "activation_required", "limit_per_card",
              "return_days", "budget", "fee", "targeting", "control_percent")  # fmt: skip
CASHBACK_KEYS = ("percent", "fixed")
FEE_KEYS = ("percent", "fixed")
HOURS_KEYS = ("from", "until")
TARGETING_KEYS = ("segment", "radius_km", "new_customers", "new_within_days", "lapsed_days")
CARD_KEYS = ("scheme", "first_six", "last_four", "member", "segments", "home")
HOME_KEYS = ("latitude", "longitude")
MESSAGE_KEYS = ("transaction_id", "kind", "card", "amount", "currency", "at", "scheme",
                "merchant_id", "descriptor", "mcc", "original")  # fmt: skip
RULE_KEYS = ("descriptor", "mcc", "location")

MAX_LOCATIONS = 1000  # per merchant in one call: a chain's shops, not a network's
MAX_DAYS = 3650
MAX_PERCENT = Decimal(100)
MAX_SEGMENTS = 50
_MCC = re.compile(r"[0-9]{4}")
_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class LocationSent:
    code: str
    descriptor: str
    mcc: str | None
    latitude: Decimal | None
    longitude: Decimal | None
    address: str | None
    merchant_ids: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CardSent:
    scheme: str
    first_six: str
    last_four: str
    member: str | None
    segments: tuple[str, ...]
    latitude: Decimal | None
    longitude: Decimal | None


@dataclass(frozen=True, slots=True)
class MessageSent:
    transaction_id: str
    kind: Kind
    card: str
    amount: int
    currency: str
    at: datetime
    scheme: str
    merchant_id: str | None
    descriptor: str
    mcc: str | None
    original: str | None

    def message(self, seq: int) -> Message:
        """The message the feed's two steps take, at `seq` in the feed."""
        return Message(seq, self.transaction_id, self.kind, self.card, self.amount, self.at,
                       self.scheme, self.merchant_id, self.descriptor, self.mcc,
                       self.original)  # fmt: skip


def _report(reader: Reader, key: str, message: str) -> None:
    reader.report(reader.at(key), message)


def read_mcc(reader: Reader, key: str) -> str | None:
    mcc = reader.text(key, max_length=4)
    if mcc is not None and not _MCC.fullmatch(mcc):
        _report(reader, key, f"{show(mcc)} is not an MCC (four digits)")
        return None
    return mcc


def read_scheme(reader: Reader, key: str, *, required: bool = True) -> str | None:
    scheme = reader.text(key, max_length=16, required=required)
    if scheme is not None and scheme not in SCHEMES:
        _report(reader, key, f"{show(scheme)} is not a card scheme ({', '.join(SCHEMES)})")
        return None
    return scheme


def read_coordinate(reader: Reader, key: str, limit: int) -> Decimal | None:
    value = reader.decimal(key, minimum=Decimal(-limit), maximum=Decimal(limit))
    return None if value is None else value.quantize(Decimal("0.000001"))


def read_merchant(reader: Reader) -> tuple[str, list[LocationSent]]:
    name = reader.text("name", max_length=200, required=True) or ""
    listed = reader.records("locations", LOCATION_KEYS, required=True)
    locations = [_location(location) for location in listed]
    if len(locations) > MAX_LOCATIONS:
        _report(reader, "locations", f"{len(locations)} locations: at most {MAX_LOCATIONS}")
    codes = [location.code for location in locations]
    for code in sorted({code for code in codes if codes.count(code) > 1}):
        _report(reader, "locations", f"location {code!r} is given twice")
    return name, locations


def _location(reader: Reader) -> LocationSent:
    code = reader.code("code") or ""
    descriptor = reader.text("descriptor", max_length=200, required=True) or ""
    mcc = read_mcc(reader, "mcc")
    latitude = read_coordinate(reader, "latitude", 90)
    longitude = read_coordinate(reader, "longitude", 180)
    if (latitude is None) != (longitude is None):
        _report(reader, "latitude", "give both latitude and longitude, or neither")
    address = reader.text("address", max_length=300)
    mids: list[tuple[str, str]] = []
    ids = reader.mapping("merchant_ids", SCHEMES)
    for scheme in SCHEMES:
        if ids is not None and ids.has(scheme):
            mid = ids.text(scheme, max_length=64)
            if mid is not None:
                mids.append((scheme, mid))
    return LocationSent(code, descriptor, mcc, latitude, longitude, address, tuple(mids))


def read_offer(reader: Reader, digits: int) -> tuple[str, Offer] | None:
    """The merchant's code and the offer (its code filled in by the caller)."""
    merchant = reader.code("merchant") or ""
    starts, until = reader.day("starts", required=True), reader.day("until", required=True)
    if starts is not None and until is not None and until < starts:
        _report(reader, "until", f"{until} is before starts ({starts})")
    percent, fixed = _cashback(reader, digits)
    hours = _hours(reader)
    weekdays = _weekdays(reader)
    schemes = reader.raw("schemes")
    scheme_set = _schemes(reader, schemes) if schemes is not None else None
    fee = reader.mapping("fee", FEE_KEYS)
    offer = Offer(
        code="",
        merchant=merchant,
        starts=starts or datetime.min.date(),
        until=until or datetime.min.date(),
        percent=percent,
        fixed=fixed,
        weekdays=weekdays,
        hours=hours,
        min_amount=reader.minor("min_amount", digits, unit="money"),
        max_amount=reader.minor("max_amount", digits, unit="money"),
        max_cashback=reader.minor("max_cashback", digits, unit="money"),
        schemes=scheme_set,
        activation_required=bool(reader.boolean("activation_required")),
        limit_per_card=reader.integer("limit_per_card", minimum=1, maximum=1_000_000),
        return_days=_integer_or(reader, "return_days", 30, 0, MAX_DAYS),
        budget=reader.minor("budget", digits, unit="money"),
        fee_percent=_percent(fee, "percent") if fee else Decimal(0),
        fee_fixed=(fee.minor("fixed", digits, unit="money") or 0) if fee else 0,
        targeting=_targeting(reader),
        control_percent=_percent(reader, "control_percent", maximum=Decimal(50)),
    )
    if reader.problems:
        return None
    return merchant, offer


def _cashback(reader: Reader, digits: int) -> tuple[Decimal | None, int | None]:
    cashback = reader.mapping("cashback", CASHBACK_KEYS, required=True)
    if cashback is None:
        return None, None
    percent = cashback.decimal("percent", minimum=Decimal(0), maximum=MAX_PERCENT)
    fixed = cashback.minor("fixed", digits, unit="money")
    if (percent is None) == (fixed is None) and not reader.problems:
        _report(reader, "cashback", "give `percent` or `fixed`, one of them")
    return percent, fixed


def _percent(reader: Reader, key: str, maximum: Decimal = MAX_PERCENT) -> Decimal:
    value = reader.decimal(key, minimum=Decimal(0), maximum=maximum)
    return Decimal(0) if value is None else value


def _integer_or(reader: Reader, key: str, default: int, low: int, high: int) -> int:
    value = reader.integer(key, minimum=low, maximum=high)
    return default if value is None else value


def _hours(reader: Reader) -> tuple[time, time] | None:
    hours = reader.mapping("hours", HOURS_KEYS)
    if hours is None:
        return None
    start, end = _time(hours, "from"), _time(hours, "until")
    if start is None or end is None:
        return None
    if start == end:
        _report(reader, "hours", "from and until are the same time: the window is empty")
    return start, end


def _time(reader: Reader, key: str) -> time | None:
    value = reader.text(key, max_length=5, required=True)
    if value is None:
        return None
    found = _TIME.fullmatch(value)
    if found is None:
        _report(reader, key, f"{show(value)} is not a time (HH:MM)")
        return None
    return time(int(found[1]), int(found[2]))


def _weekdays(reader: Reader) -> frozenset[int] | None:
    raw = reader.list("weekdays")
    if raw is None:
        return None
    days = set()
    for loc, value in raw:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7:
            reader.report(loc, f"{show(value)} is not a weekday (1 Monday … 7 Sunday)")
        else:
            days.add(value)
    if not days and not reader.problems:
        _report(reader, "weekdays", "no weekday given: the offer would never apply")
    return frozenset(days)


def _schemes(reader: Reader, raw: object) -> frozenset[str] | None:
    if not isinstance(raw, list) or not raw:
        _report(reader, "schemes", f"{show(raw)} is not a list of card schemes")
        return None
    found = set()
    for value in raw:
        if value not in SCHEMES:
            _report(reader, "schemes", f"{show(value)} is not a card scheme")
        else:
            found.add(str(value))
    return frozenset(found)


def _targeting(reader: Reader) -> Targeting:
    target = reader.mapping("targeting", TARGETING_KEYS)
    if target is None:
        return Targeting()
    radius = target.decimal("radius_km", minimum=Decimal("0.01"), maximum=Decimal(20000))
    return Targeting(
        segment=target.code("segment", required=False),
        radius_km=radius,
        new_customers=bool(target.boolean("new_customers")),
        new_within_days=_integer_or(target, "new_within_days", 365, 1, MAX_DAYS),
        lapsed_days=target.integer("lapsed_days", minimum=1, maximum=MAX_DAYS),
    )


def read_card(reader: Reader) -> CardSent:
    scheme = read_scheme(reader, "scheme") or ""
    first_six = _digits(reader, "first_six", 6)
    last_four = _digits(reader, "last_four", 4)
    member = reader.text("member", max_length=64)
    segments = (frozenset() if reader.raw("segments") == []
                else reader.codes("segments") or frozenset())  # fmt: skip
    if len(segments) > MAX_SEGMENTS:
        _report(reader, "segments", f"{len(segments)} segments: at most {MAX_SEGMENTS}")
    home = reader.mapping("home", HOME_KEYS)
    latitude = read_coordinate(home, "latitude", 90) if home else None
    longitude = read_coordinate(home, "longitude", 180) if home else None
    if home is not None and (latitude is None or longitude is None) and not reader.problems:
        _report(reader, "home", "give both latitude and longitude")
    return CardSent(scheme, first_six, last_four, member, tuple(sorted(segments)), latitude,
                    longitude)  # fmt: skip


def _digits(reader: Reader, key: str, length: int) -> str:
    value = reader.text(key, max_length=length, required=True)
    if value is not None and (len(value) != length or not _DIGITS.fullmatch(value)):
        _report(reader, key, f"{show(value)} is not {length} ASCII digits")
        return ""
    return value or ""


def read_message(reader: Reader, digits: int) -> MessageSent | None:
    transaction_id = reader.text("transaction_id", max_length=64, required=True) or ""
    kind = reader.choice("kind", Kind, required=True)
    card = reader.text("card", max_length=64, required=True) or ""
    amount = reader.minor("amount", digits, unit="money", required=True)
    if amount is not None and amount <= 0:
        _report(reader, "amount", "must be more than zero (a refund says `kind: refund`)")
    currency = reader.text("currency", max_length=3, required=True) or ""
    at = _moment(reader, "at")
    scheme = read_scheme(reader, "scheme") or ""
    merchant_id = reader.text("merchant_id", max_length=64)
    descriptor = reader.text("descriptor", max_length=200) or ""
    mcc = read_mcc(reader, "mcc")
    original = reader.text("original", max_length=64)
    if kind in (Kind.REFUND, Kind.REVERSAL) and original is None and not reader.problems:
        _report(reader, "original", f"a {kind.value} names the transaction it is about")
    if reader.problems or kind is None or amount is None or at is None:
        return None
    return MessageSent(transaction_id, kind, card, amount, currency, at, scheme, merchant_id,
                       descriptor, mcc, original)  # fmt: skip


def _moment(reader: Reader, key: str) -> datetime | None:
    value = reader.text(key, max_length=40, required=True)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not value.isascii():
        _report(reader, key, f"{show(value)} is not a local date and time with its offset "
                           "(2026-12-03T09:15:00+03:00)")  # fmt: skip
        return None
    return moment


def offer_terms(offer: Offer, digits: int) -> dict[str, Any]:
    """The body `read_offer` reads back as `offer` (its code aside): an offer made in code
    — a generated one, a copy — published through the API."""

    def money(minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, digits)

    cashback = ({"fixed": money(offer.fixed)} if offer.fixed is not None
                else {"percent": str(offer.percent)})  # fmt: skip
    target = offer.targeting
    body: dict[str, Any] = {
        "merchant": offer.merchant, "starts": offer.starts.isoformat(),
        "until": offer.until.isoformat(), "cashback": cashback,
        "max_cashback": money(offer.max_cashback), "min_amount": money(offer.min_amount),
        "max_amount": money(offer.max_amount),
        "weekdays": None if offer.weekdays is None else sorted(offer.weekdays),
        "hours": None if offer.hours is None else {"from": offer.hours[0].strftime("%H:%M"),
                                                   "until": offer.hours[1].strftime("%H:%M")},
        "schemes": None if offer.schemes is None else sorted(offer.schemes),
        "activation_required": offer.activation_required,
        "limit_per_card": offer.limit_per_card, "return_days": offer.return_days,
        "budget": money(offer.budget),
        "fee": {"percent": str(offer.fee_percent), "fixed": money(offer.fee_fixed)},
        "targeting": {"segment": target.segment,
                      "radius_km": None if target.radius_km is None else str(target.radius_km),
                      "new_customers": target.new_customers,
                      "new_within_days": target.new_within_days,
                      "lapsed_days": target.lapsed_days},
        "control_percent": str(offer.control_percent),
    }  # fmt: skip
    given: dict[str, Any] = _without_nulls(body)
    return given


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value
