"""Quoting a receipt against a program with no database: the calculator's use case.

The command line's `kopilka quote` and (later) the HTTP quote endpoint build a
`QuoteRequest`; the member's identity, tier, segments and balance come from the
request here, and from the member's record once members are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from kopilka.checkout.calculator import Calculator, Quote
from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.money import is_within_limits, parse_decimal, to_minor
from kopilka.kernel.receipt import MemberContext, parse_receipt

# Coupons live in the database: campaigns, codes, who holds them and what is used.
NO_COUPONS_NOTE = (
    "coupons_not_checked: coupons are checked against the stored campaigns; "
    "a quote without a database applies none"
)


@dataclass(frozen=True)
class QuoteRequest:
    body: object  # the purchase request body of shared/API.md
    member: str | None = None  # overrides the body's `member`
    tier: str | None = None
    segments: frozenset[str] = field(default_factory=frozenset)
    balance: str | Decimal | None = None  # available points; None: not a limit


@dataclass(frozen=True)
class QuoteResult:
    quote: Quote
    balance: int | None  # the available points the quote was made against


def quote_receipt(calculator: Calculator, request: QuoteRequest, *, now: datetime) -> QuoteResult:
    program = calculator.program
    balance = _balance(request.balance, program.points.precision)
    receipt = parse_receipt(request.body, program, now=now)
    if request.member is not None:
        receipt = replace(receipt, member=request.member)
    member = None
    if receipt.member is not None:
        member = MemberContext(frozenset({receipt.member}), request.tier, request.segments, balance)
    quote = calculator.quote(receipt, member)
    if receipt.coupons:
        quote = quote._replace(notes=(*quote.notes, NO_COUPONS_NOTE))
    return QuoteResult(quote, balance)


def _balance(raw: str | Decimal | None, digits: int) -> int | None:
    if raw is None:
        return None
    value = parse_decimal(raw)
    valid = value is not None and value >= 0 and is_within_limits(value)
    minor = to_minor(value, digits) if value is not None and valid else None
    if minor is None:
        raise InvalidInput(
            [
                Problem(
                    "balance",
                    f"{raw!r} is not an amount of points (at most {digits} decimals, not negative)",
                )
            ]
        )
    return minor
