"""The `clubs` section of a program file (docs/clubs.md): each club's code and name, how
one joins it (by payment: a fee for a period, renewal, grace; by invitation) and its
privileges (members-only products and categories, early access, flags). Every mistake is
named by its path, and a product or category the catalog lacks is named too."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.clubs.model import (
    MAX_GRACE_DAYS,
    MAX_PERIOD_DAYS,
    MONTHS,
    Club,
    ClubSettings,
    EarlyAccess,
    JoinBy,
    Payment,
    Period,
    Privileges,
    Term,
)

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

KEY = "clubs"
CLUB_KEYS = ("code", "name", "join", "privileges")
JOIN_KEYS = ("by", "fee", "points", "period", "days", "auto_renew", "grace_days")
PAYMENT_ONLY = ("fee", "points", "period", "days", "auto_renew", "grace_days")
PRIVILEGE_KEYS = ("skus", "categories", "early_access", "flags")
EARLY_KEYS = ("skus", "categories", "members_from", "everyone_from")


def clubs_of(program: Program) -> ClubSettings | None:
    """The program's `clubs` section (registered in `kopilka.sections`), if it has one."""
    found = program.sections.get(KEY)
    return found if isinstance(found, ClubSettings) else None


def parse_section(top: Reader, context: SectionContext) -> ClubSettings | None:
    clubs: dict[str, Club] = {}
    for item in top.records(KEY, CLUB_KEYS):
        code = item.code("code")
        if code is not None and code in clubs:
            item.report(item.at("code"), f"club {show(code)} is declared twice")
            continue
        name = item.text("name")
        join_by, payment = _join(item, context)
        privileges = _privileges(item, context)
        if code is not None and join_by is not None:
            clubs[code] = Club(code, name or code, join_by, payment, privileges)
    if top.raw(KEY) == []:
        top.report(top.at(KEY), "is empty; leave it out when the program runs no clubs")
    return ClubSettings(MappingProxyType(clubs))


def _join(item: Reader, context: SectionContext) -> tuple[JoinBy | None, Payment | None]:
    join = item.mapping("join", JOIN_KEYS, required=True)
    if join is None:
        return None, None
    by = join.choice("by", JoinBy, required=True)
    if by is JoinBy.INVITATION:
        for key in PAYMENT_ONLY:
            if join.has(key):
                join.report(join.at(key), "is a paid club's term; a club joined by invitation "
                                          "has none")  # fmt: skip
        return by, None
    if by is not JoinBy.PAYMENT:
        return by, None
    fee = join.minor("fee", context.money_digits, unit="money", required=True)
    points = join.minor("points", context.point_digits, unit="points")
    term = _term(join)
    auto_renew = join.boolean("auto_renew")
    grace = join.integer("grace_days", minimum=0, maximum=MAX_GRACE_DAYS)
    if fee is None or term is None:
        return by, None
    return by, Payment(fee, term, points or None, bool(auto_renew), grace or 0)


def _term(join: Reader) -> Term | None:
    if join.has("period") and join.has("days"):
        join.report(join.loc, "give the period or a number of days, not both")
        return None
    if join.has("days"):
        days = join.integer("days", minimum=1, maximum=MAX_PERIOD_DAYS)
        return Term(days=days) if days is not None else None
    period = join.choice("period", Period, required=True)
    return Term(months=MONTHS[period]) if period is not None else None


def _privileges(item: Reader, context: SectionContext) -> Privileges:
    section = item.mapping("privileges", PRIVILEGE_KEYS)
    if section is None:
        return Privileges()
    skus, categories = _products(section, context)
    early = tuple(
        access
        for entry in section.records("early_access", EARLY_KEYS, code_key="members_from")
        if (access := _early_access(entry, context)) is not None
    )
    flags = section.codes("flags") or frozenset()
    return Privileges(skus or frozenset(), categories or frozenset(), early, tuple(sorted(flags)))


def _products(
    section: Reader, context: SectionContext
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    skus = section.codes("skus")
    categories = section.codes("categories")
    _known(section, "skus", skus, context.skus, "product")
    _known(section, "categories", categories, context.categories, "category")
    return skus, categories


def _known(
    section: Reader, key: str, codes: frozenset[str] | None, known: Iterable[str], what: str
) -> None:
    for unknown in sorted((codes or frozenset()) - frozenset(known)):
        section.report(section.at(key), f"unknown {what} {show(unknown)} (not in the catalog)")


def _early_access(entry: Reader, context: SectionContext) -> EarlyAccess | None:
    skus, categories = _products(entry, context)
    if skus is None and categories is None:
        entry.report(entry.loc, "name the products (skus) or categories it opens early")
    members_from = entry.day("members_from", required=True)
    everyone_from = entry.day("everyone_from", required=True)
    if members_from is not None and everyone_from is not None and members_from >= everyone_from:
        entry.report(entry.at("everyone_from"),
                     f"{everyone_from} is not after members_from ({members_from})")  # fmt: skip
        return None
    if members_from is None or everyone_from is None or (skus is None and categories is None):
        return None
    return EarlyAccess(skus or frozenset(), categories or frozenset(), members_from,
                       everyone_from)  # fmt: skip
