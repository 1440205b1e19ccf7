"""The `stamp_cards` section of the program file, as the parser registers it."""

from __future__ import annotations

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader
from kopilka.mechanics.stamps.model import StampCard, parse_stamp_cards

KEY = "stamp_cards"


def parse_section(top: Reader, context: SectionContext) -> tuple[StampCard, ...]:
    return parse_stamp_cards(top, context.point_digits, context.money_digits)
