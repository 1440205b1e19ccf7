"""The coalition's section of the program file, `partner_terms`, and the rules it adds.

A partner's role and its exit are enforced by the calculator itself, as rules the
section adds to the program's (`AddsRules`): where a partner does not earn (its role is
`burns`, or after `earning_until`) its lines accrue nothing, and where it does not
redeem (`earns`, or after `redeeming_until`) no point pays for them. They outrank every
rule of the file and are explained in the answer like any rule (`partner:<code>:…`), so
a support agent can say why a purchase earned nothing there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from kopilka.kernel.program import (
    RULE_KINDS,
    AccrualEffect,
    AccrualMode,
    Conditions,
    DateRange,
    Rule,
)
from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader
from kopilka.mechanics.coalition.model import PartnerTerms, parse_partner_terms

KEY = "partner_terms"
OUTRANKS_EVERY_RULE = 2**62  # a rule of the file may not go this high (its priority is int64)
NO_EARNING = AccrualEffect(AccrualMode.COEFFICIENT, Fraction(0), 0, "accrue", False)


@dataclass(frozen=True)
class CoalitionSettings:
    """The partners' terms, by partner."""

    terms: tuple[PartnerTerms, ...]

    def of(self, partner: str) -> PartnerTerms | None:
        return next((terms for terms in self.terms if terms.partner == partner), None)

    def program_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for terms in self.terms for rule in _rules_of(terms))


def parse_section(top: Reader, context: SectionContext) -> CoalitionSettings:
    return CoalitionSettings(parse_partner_terms(top, context.partners, context.money_digits))


def coalition_of(sections: Mapping[str, object]) -> CoalitionSettings | None:
    """The program's coalition settings (`Program.sections`), or None without them."""
    settings = sections.get(KEY)
    return settings if isinstance(settings, CoalitionSettings) else None


def _rules_of(terms: PartnerTerms) -> list[Rule]:
    """One rule per coefficient slot for each stop: a zero in every slot, so no rule of
    the file (a product's points per unit included) can give points there."""
    stops: list[tuple[str, date | None, bool]] = []
    if not terms.role.earns:
        stops.append(("does_not_earn", None, True))
    elif terms.earning_until is not None:
        stops.append(("earning_ended", terms.earning_until + timedelta(days=1), True))
    if not terms.role.burns:
        stops.append(("does_not_redeem", None, False))
    elif terms.redeeming_until is not None:
        stops.append(("redeeming_ended", terms.redeeming_until + timedelta(days=1), False))
    return [
        Rule(
            code=f"partner:{terms.partner}:{what}",
            kind=kind,
            when=Conditions(
                partners=frozenset({terms.partner}),
                between=DateRange(since, None) if since else None,
            ),
            accrual=NO_EARNING if earning else None,
            max_points=None,
            redeem_percent=None if earning else Decimal(0),
            priority=OUTRANKS_EVERY_RULE,
        )
        for what, since, earning in stops
        for kind in RULE_KINDS
    ]
