"""A receipt as the point of sale sends it, validated against a program.

`parse_receipt` turns the request body of shared/API.md into a `Receipt` of exact
integers, naming every problem with its place (`lines[1].qty: 'two' is not a
number`). A line's `amount` is qty × price − discount, rounded half-up to the
currency's minor unit (weighed goods have fractional quantities).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.money import format_minor, receipt_limit_minor, to_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import Reader, show, text_problem

RECEIPT_KEYS = (
    "receipt_id",
    "location",
    "member",
    "at",
    "lines",
    "redeem",
    "coupons",
    "payment",
    "hold",
)
LINE_KEYS = ("sku", "name", "category", "qty", "price", "discount")
PAYMENT_KEYS = ("method", "bin", "last4", "device")
MAX_LINES = 1000
MAX_COUPONS = 10  # a till scans a few; more is someone trying codes
QTY_DIGITS = 6  # weighed goods come in grams; no scale reads finer than a milligram

Redeem = int | Literal["max"]


@dataclass(frozen=True, slots=True)
class Line:
    n: int
    sku: str
    category: str | None
    qty: Decimal
    price: int  # money minor units
    discount: int  # money minor units
    amount: int  # qty × price − discount, money minor units
    earning: int = 0  # the part of `discount` that still earns points (money minor units)
    reward: int = 0  # the part of `discount` the program gave that earns nothing


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: str | None
    location: str | None
    member: str | None
    at: datetime  # aware, in the location's time zone
    lines: tuple[Line, ...]
    redeem: Redeem  # point minor units, or "max"
    coupons: tuple[str, ...]
    payment_method: str | None
    hold: bool
    payment_bin: str | None = None  # the card's first digits (6–8), for cashback by bank
    payment_last4: str | None = None  # its last four digits (with the BIN: referral checks)
    device: str | None = None  # the paying device's fingerprint, when the caller sends one

    @property
    def total(self) -> int:
        """Before discounts: Σ qty × price (money minor units)."""
        return sum(line.amount + line.discount for line in self.lines)


@dataclass(frozen=True, slots=True)
class MemberContext:
    """What the calculator knows of the member: identities, tier, segments, balance."""

    refs: frozenset[str]  # "card:100001", "phone:+7…", the member's id …
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    balance: int | None = None  # available points in point minor units; None: not a limit
    # for discounts (read only when the program's discounts ask for them)
    lifetime_spend: int = 0  # money minor units, net of refunds, before this receipt
    purchases: int = 0  # the member's purchases before this receipt
    last_bought: Mapping[str, datetime] = field(default_factory=dict)  # partner → latest
    cards: frozenset[str] = frozenset()  # paid discount cards in force
    clubs: frozenset[str] = frozenset()  # the clubs the member is in at the purchase's time


def parse_receipt(data: object, program: Program, *, now: datetime) -> Receipt:
    """Validate a purchase body against `program`; `now` is used when it has no `at`."""
    problems: list[Problem] = []
    body = Reader(data, "", problems, RECEIPT_KEYS)
    location = body.code("location", required=False)
    if location is not None and location not in program.locations:
        body.report("location", f"{show(location)} is not a location of program {program.code}")
        location = None
    lines = tuple(_lines(body, program))
    payment_method, payment_bin, payment_last4, device = _payment(body)
    receipt = Receipt(
        receipt_id=body.text("receipt_id"),
        location=location,
        member=body.text("member"),
        at=_moment(body, program, location, now),
        lines=lines,
        redeem=_redeem(body, program),
        coupons=_coupons(body),
        payment_method=payment_method,
        hold=bool(body.boolean("hold")),
        payment_bin=payment_bin,
        payment_last4=payment_last4,
        device=device,
    )
    if problems:
        raise InvalidInput(problems)
    return receipt


def _moment(body: Reader, program: Program, location: str | None, now: datetime) -> datetime:
    zone = zoneinfo.ZoneInfo(program.locations[location].timezone if location else program.timezone)
    raw = body.raw("at")
    if raw is None:
        return now.astimezone(zone)
    moment = raw if isinstance(raw, datetime) else _parse_iso(raw)
    if moment is None:
        body.report("at", f"{show(raw)} is not an ISO 8601 time (2026-03-09T16:30:00+03:00)")
        return now.astimezone(zone)
    if moment.tzinfo is None:  # a time without offset is the location's local time
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def _parse_iso(raw: object) -> datetime | None:
    if not isinstance(raw, str) or len(raw.strip()) <= len("YYYY-MM-DD"):  # a date is no time
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _lines(body: Reader, program: Program) -> list[Line]:
    lines: list[Line] = []
    items = list(body.records("lines", LINE_KEYS, code_key="sku", required=True))
    if isinstance(body.raw("lines"), list) and not items:
        body.report("lines", "is empty; a receipt has at least one line")
    if len(items) > MAX_LINES:
        body.report("lines", f"has {len(items)} lines; at most {MAX_LINES}")
        return lines
    for n, item in enumerate(items):
        line = _line(item, n, program)
        if line is not None:
            lines.append(line)
    total = sum(line.amount + line.discount for line in lines)
    if total > receipt_limit_minor(program.money_digits):
        body.report("lines", f"add up to {_money(total, program)}; {_at_most(program)}")
    return lines


def _at_most(program: Program) -> str:
    most = receipt_limit_minor(program.money_digits)
    return f"a receipt may come to at most {_money(most, program)}"


def _money(minor: int, program: Program) -> str:
    return f"{format_minor(minor, program.money_digits)} {program.currency}"


def _line(item: Reader, n: int, program: Program) -> Line | None:
    digits = program.money_digits
    unit = f"money, {program.currency}"
    sku = item.text("sku", required=True)
    item.text("name")
    product = program.products.get(sku) if sku else None
    category = (
        product.category if product and product.category else item.code("category", required=False)
    )
    qty = item.decimal("qty", minimum=Decimal(0)) if item.has("qty") else Decimal(1)
    if qty == 0:
        item.report(item.at("qty"), "must be more than 0")
    elif qty is not None and to_minor(qty, QTY_DIGITS) is None:
        item.report(item.at("qty"), f"{qty} has more than {QTY_DIGITS} decimals")
        qty = None
    price = item.minor("price", digits, unit=unit)
    if price is None and product is not None and not item.has("price"):
        price = product.price
    if price is None and not item.has("price") and sku is not None:
        item.report(item.at("price"), f"is required (sku {show(sku)} has no catalog price)")
    discount = item.minor("discount", digits, unit=unit) or 0
    if sku is None or price is None or not qty:
        return None
    qty_numerator, qty_denominator = qty.as_integer_ratio()
    gross = (2 * qty_numerator * price + qty_denominator) // (2 * qty_denominator)  # half-up
    if gross > receipt_limit_minor(digits):
        item.report(item.loc, f"qty × price is {_money(gross, program)}; {_at_most(program)}")
        return None
    if discount > gross:
        item.report(
            item.at("discount"),
            f"{format_minor(discount, digits)} is more than "
            f"the line's {format_minor(gross, digits)}",
        )
        return None
    return Line(n, sku, category, qty, price, discount, gross - discount)


def _redeem(body: Reader, program: Program) -> Redeem:
    raw = body.raw("redeem")
    if raw is None:
        return 0
    if raw == "max":
        return "max"
    digits = program.points.precision
    number = body.decimal("redeem", minimum=Decimal(0), what='an amount of points or "max"')
    if number is None:
        return 0
    minor = to_minor(number, digits)
    if minor is None:
        body.report("redeem", f"{number} has more than {digits} decimals (points)")
        return 0
    return minor


def _coupons(body: Reader) -> tuple[str, ...]:
    items = body.list("coupons") or []
    if len(items) > MAX_COUPONS:
        body.report("coupons", f"has {len(items)} codes; at most {MAX_COUPONS} per receipt")
        return ()
    codes: list[str] = []
    for loc, value in items:
        problem = text_problem(value) if isinstance(value, str) else None
        if not isinstance(value, str) or not value.strip():
            body.report(loc, f"{show(value)} is not a coupon code")
        elif problem is not None:
            body.report(loc, problem)
        else:
            codes.append(value.strip())
    return tuple(codes)


_BIN = re.compile(r"^[0-9]{6,8}$")  # ASCII digits: "٤٢٧٦٠٠" is no BIN
_LAST4 = re.compile(r"^[0-9]{4}$")
_DEVICE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, as at registration


def _payment(body: Reader) -> tuple[str | None, str | None, str | None, str | None]:
    """The payment's method, card BIN (the first 6–8 digits of the card number) and last
    four digits, and the paying device's fingerprint — never a whole card number."""
    payment = body.mapping("payment", PAYMENT_KEYS)
    if payment is None:
        return None, None, None, None
    card_bin = payment.text("bin", pattern=_BIN, what="a card BIN: the first 6 to 8 digits")
    last4 = payment.text("last4", pattern=_LAST4, what="the card's last 4 digits")
    device = payment.text(
        "device", pattern=_DEVICE, what="a device fingerprint (1–128 printable ASCII characters)"
    )
    return payment.text("method"), card_bin, last4, device
