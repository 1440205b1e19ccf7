"""Pricing a receipt once, in the mechanics' steps: the program's discounts, then what
each mechanic that offers discounts (the coupons) makes of the lines they leave, then the
points. The checkout knows the steps' protocol (`Mechanic.offering`), not the mechanics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kopilka.checkout.calculator import Quote
from kopilka.checkout.mechanic import mechanics
from kopilka.checkout.offers import Offer, OfferStep, PricedLine
from kopilka.kernel.receipt import MemberContext, Receipt
from kopilka.programs.handlers import LoadedProgram


@dataclass(frozen=True)
class PricingContext:
    """A receipt being priced, handed to each mechanic's `offering`."""

    connection: Connection
    program: LoadedProgram
    receipt: Receipt
    member: MemberContext | None
    member_id: int | None
    now: datetime  # the server's time: a terminal's clock can't bring an expired offer back
    parts: dict[str, Any] = field(default_factory=dict)  # each mechanic's own, by its name
    # what each mechanic read of the member with the purchase's load (`Reads`), by its name
    read: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Priced:
    """A priced receipt: the quote, and how it was priced (each mechanic's own `parts`)."""

    quote: Quote
    context: PricingContext

    @property
    def parts(self) -> dict[str, Any]:
        return self.context.parts

    @property
    def read(self) -> Mapping[str, Mapping[str, Any]]:
        return self.context.read


def price_receipt(
    connection: Connection, program: LoadedProgram, receipt: Receipt,
    member: MemberContext | None, member_id: int | None, now: datetime,
    read: Mapping[str, Mapping[str, Any]] | None = None,
) -> Priced:  # fmt: skip
    """The quote for `receipt`: the receipt priced once, with every mechanic's step."""
    context = PricingContext(connection, program, receipt, member, member_id, now, read=read or {})
    steps = [step for mechanic in mechanics() if (step := mechanic.offering(context))]
    quote = program.calculator.quote(receipt, member, _chained(steps) if steps else ())
    return Priced(quote, context)


def _chained(steps: Sequence[OfferStep]) -> OfferStep:
    """One step of every mechanic's offers, in step order (each sees the lines as the
    program's discounts leave them)."""

    def offers(lines: tuple[PricedLine, ...]) -> list[Offer]:
        return [offer for step in steps for offer in step(lines)]

    return offers
