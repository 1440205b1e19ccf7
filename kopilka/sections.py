"""The program file's sections that belong to the product's mechanics, registered in one
place: the parser (`kernel.program_parser`) loads this module by name before it reads
its first program, so the kernel imports no mechanic and every program file read —
by the server, the command line or a test — knows every section of the product.

A mechanic's settings are then found at `Program.sections[key]`, read through its own
typed accessor (`cashback_of`, `triggers_of`). A mechanic that lives outside the product
(one a test registers) registers its section itself, with its hooks.
"""

from __future__ import annotations

from kopilka.kernel.program_parser import register_section
from kopilka.mechanics.actions import section as actions
from kopilka.mechanics.bounce_back import section as bounce_back
from kopilka.mechanics.card_offers import section as card_offers
from kopilka.mechanics.cashback.model import parse_cashback
from kopilka.mechanics.challenges import section as challenges
from kopilka.mechanics.charity import section as charity
from kopilka.mechanics.claims import section as claims
from kopilka.mechanics.clubs import section as clubs
from kopilka.mechanics.coalition import section as coalition
from kopilka.mechanics.exchange import section as exchange
from kopilka.mechanics.referrals import section as referrals
from kopilka.mechanics.stamps import section as stamps
from kopilka.mechanics.triggers.section import parse_triggers

register_section(
    "triggers", lambda top, context: parse_triggers(top, context.point_digits, context.money_digits)
)
register_section("cashback", lambda top, context: parse_cashback(top, context.money_digits))
register_section("actions", actions.parse_section)
register_section("referrals", referrals.parse_section)
register_section(stamps.KEY, stamps.parse_section)
register_section(challenges.CHALLENGES, challenges.parse_challenges_section)
register_section(challenges.BADGES, challenges.parse_badges_section)
register_section(bounce_back.KEY, bounce_back.parse_section)
register_section(clubs.KEY, clubs.parse_section)
register_section(coalition.KEY, coalition.parse_section)
register_section(claims.KEY, claims.parse_section)
register_section(exchange.KEY, exchange.parse_section)
register_section(charity.KEY, charity.parse_section)
register_section(card_offers.KEY, card_offers.parse_section)
