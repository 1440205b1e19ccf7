"""What a mechanic hands the calculator to take money off a receipt: an `Offer` of a
`Discount` with its effect, made by an `OfferStep` from the lines as the program's
discounts leave them (`Mechanic.offering`).

The vocabulary is the discounts mechanic's model, which the calculator prices with; it is
re-exported here as the checkout's contract, so a mechanic that offers discounts (the
coupons) depends on the checkout, not on another mechanic.
"""

from kopilka.mechanics.discounts.model import (
    AmountOff,
    Discount,
    Effect,
    FreeUnit,
    Offer,
    OfferStep,
    PercentOff,
    PricedLine,
)

__all__ = [
    "AmountOff",
    "Discount",
    "Effect",
    "FreeUnit",
    "Offer",
    "OfferStep",
    "PercentOff",
    "PricedLine",
]
