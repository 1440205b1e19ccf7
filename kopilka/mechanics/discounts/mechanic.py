"""Discounts in the purchase pipeline: what pricing needs to know of the member.

The discounts themselves are applied by the calculator (the first step of a receipt's
price); this mechanic only reads the member's history and discount cards when the
program's discounts ask for them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect

from kopilka.checkout.mechanic import Mechanic, Reads, Step
from kopilka.mechanics.discounts.handlers import shopper_reads
from kopilka.programs.handlers import LoadedProgram


class Discounts(Mechanic):
    name = "discounts"
    step = Step.DISCOUNTS

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        return shopper_reads(program.calculator.program, member)
