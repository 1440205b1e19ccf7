"""`thanks`: a small mechanic that lives only in the tests — the proof that a new
mechanic is one folder, one registration and its migration.

A member's purchase of at least `min_total` earns `points` more, credited with the
purchase's own points (one write), named in the answer (`thanks`, with how many times
the member was thanked before: a read that goes out in the purchase's load), recorded in the
mechanic's own table, taken back by the refund that returns the whole receipt, and
listed on a console page of its own (`/console/{program}/thanks`).
"""

from __future__ import annotations

from kopilka.checkout.mechanic import register, unregister
from kopilka.kernel.program_parser import register_section, unregister_section
from tests.mechanics.thanks.mechanic import Thanks, parse_section


def install() -> Thanks:
    """The registration: its section of the program file and its hooks."""
    register_section("thanks", parse_section)
    mechanic = Thanks()
    register(mechanic)
    return mechanic


def uninstall() -> None:
    unregister("thanks")
    unregister_section("thanks")
