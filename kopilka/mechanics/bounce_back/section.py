"""The `bounce_back` section of the program file: its products, categories and
locations must be the program's."""

from __future__ import annotations

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.bounce_back.model import Offer, parse_offers

KEY = "bounce_back"


def parse_section(top: Reader, context: SectionContext) -> tuple[Offer, ...]:
    offers = parse_offers(top, context.money_digits)
    for i, offer in enumerate(offers):
        at = f"{KEY}[{i}] ({offer.code})"
        for key, named, known in (("skus", offer.skus, context.skus),
                                  ("categories", offer.categories, context.categories),
                                  ("locations", offer.locations, context.locations)):  # fmt: skip
            for code in sorted((named or frozenset()) - known):
                top.report(
                    f"{at}.{key}",
                    f"unknown {key[:-1] if key != 'categories' else 'category'} {show(code)}",
                )
    return offers
