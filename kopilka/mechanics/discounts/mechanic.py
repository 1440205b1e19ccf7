"""Discounts in the purchase pipeline: what pricing needs to know of the member.

The discounts themselves are applied by the calculator (the first step of a receipt's
price); this mechanic only reads the member's history and discount cards when the
program's discounts ask for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.discounts.handlers import shopper_facts
from kopilka.programs.handlers import LoadedProgram


class Discounts(Mechanic):
    name = "discounts"
    step = Step.DISCOUNTS

    def reads(self, connection: Connection, program: LoadedProgram, member_id: int,
              now: datetime) -> dict[str, Any]:  # fmt: skip
        return shopper_facts(connection, program.program_id, program.calculator.program,
                             member_id, now)  # fmt: skip
