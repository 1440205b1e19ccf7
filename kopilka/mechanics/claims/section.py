"""The `claims` section of a program file (docs/program.md, docs/claims.md): the time a
partner has to decide a claim and how old a receipt may be when it is claimed. A program
without the section takes claims with the defaults (the service centre is always open)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader
from kopilka.mechanics.claims.model import (
    DEFAULT_SLA_HOURS,
    DEFAULT_WITHIN_DAYS,
    DEFAULTS,
    MAX_SLA_HOURS,
    MAX_WITHIN_DAYS,
    ClaimSettings,
)

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

KEY = "claims"
CLAIM_KEYS = ("sla_hours", "within_days")


def claims_of(program: Program) -> ClaimSettings:
    """The program's `claims` section (registered in `kopilka.sections`), or the defaults."""
    found = program.sections.get(KEY)
    return found if isinstance(found, ClaimSettings) else DEFAULTS


def parse_section(top: Reader, context: SectionContext) -> ClaimSettings | None:
    del context
    section = top.mapping(KEY, CLAIM_KEYS)
    if section is None:
        return None
    hours = section.integer("sla_hours", minimum=1, maximum=MAX_SLA_HOURS)
    days = section.integer("within_days", minimum=1, maximum=MAX_WITHIN_DAYS)
    return ClaimSettings(
        sla_hours=DEFAULT_SLA_HOURS if hours is None else hours,
        within_days=DEFAULT_WITHIN_DAYS if days is None else days,
    )
