"""Exact money and points: integers in minor units, Decimal only at the edges.

A sum of money is an `int` of the currency's minor unit (kopecks for RUB); a
number of points is an `int` of the program's point unit (hundredths of a point
when `points.precision` is 2). Text becomes minor units through `to_minor`, and
minor units become text through `format_minor`; nothing in between is a float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from fractions import Fraction

# ISO 4217 currencies whose minor unit is not the hundredth; every other has two digits.
_CURRENCY_DIGITS_EXCEPTIONS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}


def currency_digits(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (RUB: 2, JPY: 0, KWD: 3)."""
    return _CURRENCY_DIGITS_EXCEPTIONS.get(currency, 2)


class Rounding(Enum):
    """How a receipt's exact points become a whole number of point units."""

    DOWN = "down"
    HALF_UP = "half_up"
    UP = "up"


def divide_rounded(numerator: int, denominator: int, rounding: Rounding) -> int:
    """numerator / denominator rounded to an integer; both are non-negative."""
    if rounding is Rounding.DOWN:
        return numerator // denominator
    if rounding is Rounding.UP:
        return -((-numerator) // denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def apportion(shares: list[int], denominator: int, total: int) -> list[int]:
    """Split `total` units over exact shares `shares[i] / denominator` by largest remainder.

    Every part is its share's floor, plus one unit for the parts with the largest
    remainders until the parts add up to `total` (ties go to the earlier part).
    The caller guarantees floor(sum) <= total <= ceil(sum) of the shares, so no part
    ever receives a unit its share does not round to.
    """
    parts = [share // denominator for share in shares]
    missing = total - sum(parts)
    if missing > 0:
        negative_remainders = [-(share % denominator) for share in shares]
        # sorted() is stable, so among equal remainders the earlier part comes first
        for i in sorted(range(len(shares)), key=negative_remainders.__getitem__)[:missing]:
            parts[i] += 1
    return parts


# No amount, quantity or setting of a loyalty program comes near 10^15, nor needs more
# than 18 decimals; bounding every number read keeps absurd input ("1e999999") from
# ever reaching integer arithmetic.
MAGNITUDE_LIMIT = Decimal(10) ** 15
_SMALLEST_EXPONENT = -18


# The ledger keeps amounts as signed 64-bit integers of minor units (at most about
# 9.2 × 10^18). One receipt may come to at most 10^13 currency units (ten trillion): with
# four decimals (CLF) that is 10^17 minor units, some 90 times below the ceiling, so the
# sums of receipts and the points derived from them still fit. No single amount read —
# a price, a payout, an adjustment — may be more than 10^17 minor units either.
RECEIPT_LIMIT = 10**13
MINOR_LIMIT = 10**17


def receipt_limit_minor(digits: int) -> int:
    """The most one receipt (or one of its lines) may come to, in minor units."""
    return int(RECEIPT_LIMIT * 10**digits)


def is_within_limits(value: Decimal) -> bool:
    """True for a number Kopilka can take as an amount, quantity or setting."""
    if value == 0:
        return True
    return abs(value) < MAGNITUDE_LIMIT and value.adjusted() >= _SMALLEST_EXPONENT


# What a number written as text may look like: ASCII digits, one optional sign, one optional
# decimal point with digits on both sides. Decimal() alone would also take "١٢٣" (any
# script's digits), "１２", " 12 ", "1_000", "1e5", "NaN" and "Infinity" — none of which a
# till or an operator means as an amount.
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def parse_decimal(raw: object) -> Decimal | None:
    """A finite Decimal from a JSON/YAML scalar (string, int, Decimal), or None if it is not one.

    Booleans are not numbers here; a float is only accepted through its shortest
    repr, so `0.1` reads as Decimal("0.1"), never as the binary approximation. Text must
    be plain decimal notation in ASCII digits (`_DECIMAL_TEXT`), with no spaces.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    elif isinstance(raw, str):
        if not _DECIMAL_TEXT.fullmatch(raw):
            return None
        value = Decimal(raw)
    else:
        return None
    return value if value.is_finite() else None


def to_minor(value: Decimal, digits: int) -> int | None:
    """`value` in minor units of `digits` decimals, or None when it has more decimals."""
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def format_minor(minor: int, digits: int) -> str:
    """Minor units as decimal text with exactly `digits` decimals: 61000, 2 → '610.00'."""
    if digits == 0:
        return str(minor)
    text = str(-minor if minor < 0 else minor).rjust(digits + 1, "0")  # string work: ~2× divmod's
    return f"{'-' if minor < 0 else ''}{text[:-digits]}.{text[-digits:]}"


def format_ratio(value: Fraction) -> str:
    """A coefficient as short exact text ('3', '2.5', '0'); non-decimal ratios to 6 places."""
    if value.denominator == 1:
        return str(value.numerator)
    as_decimal = Decimal(value.numerator) / Decimal(value.denominator)
    if as_decimal * value.denominator == value.numerator:
        return format(as_decimal.normalize(), "f")
    return format(as_decimal.quantize(Decimal("0.000001")).normalize(), "f")
