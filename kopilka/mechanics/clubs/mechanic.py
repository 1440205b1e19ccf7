"""The clubs mechanic's hooks (docs/clubs.md).

- `reads`: the clubs the member is in at the purchase's time, one query riding in the
  purchase's load — the fact `clubs` prices the rules with `when: {clubs: [...]}`;
- `admit` (a purchase) and `quoted` (a quote): a line only a club's members may buy, or
  one on early access, refuses the receipt (`422 club_only`, nothing written);
- `quoted` / `planned`: the member's clubs and the flags a till shows (`privileges`,
  the tier's and the clubs'), in the answer;
- `due_work`: automatic renewals' expected payments, and lapses;
- `member_part`: the member's memberships and their clubs' flags.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, ScalarSelect, bindparam, select

from kopilka.checkout.mechanic import JSON, Mechanic, Reads, Sale, Step
from kopilka.checkout.pricing import Priced
from kopilka.mechanics.clubs import handlers
from kopilka.mechanics.clubs import pages as console_pages
from kopilka.mechanics.clubs import routes as api_routes
from kopilka.mechanics.clubs.model import ClubOnly, SaleLine, refused_lines
from kopilka.mechanics.clubs.status import in_force
from kopilka.mechanics.clubs.tables import CHECKS, club_memberships
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Clubs(Mechanic):
    name = "clubs"
    step = Step.LATER
    router = api_routes.router
    pages = console_pages.router
    console_link = ("clubs", "Clubs")
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    checks = CHECKS

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        """The clubs the member is in now: a query riding in the purchase's load."""
        if handlers.settings_of(program) is None:
            return None
        held = club_memberships.c
        now = bindparam("clubs_now", type_=held.ends_at.type)
        query = select(held.club).where(held.member_id == member, in_force(now))
        return Reads((query,), lambda rows: {"clubs": frozenset(row[0] for row in rows[0])},
                     lambda moment: {"clubs_now": moment})  # fmt: skip

    def admit(self, priced: Priced) -> None:
        _refuse_club_only(priced)

    def quoted(self, sale: Sale) -> None:
        _refuse_club_only(sale.priced)  # a quote says what the purchase would answer
        _show_privileges(sale)

    def planned(self, sale: Sale) -> None:
        _show_privileges(sale)

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return handlers.due_work(engine, now)

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> JSON | None:
        return handlers.member_part(connection, program, member_id, now)


def _refuse_club_only(priced: Priced) -> None:
    """Refuse a receipt holding a line its buyer may not buy (a club's members-only
    product, one on early access): every such line named, nothing written."""
    context = priced.context
    settings = handlers.settings_of(context.program)
    if settings is None or not settings.restricts:
        return
    program = context.program.calculator.program
    lines = [SaleLine(line.n, line.sku, program.category_lineage(line.category))
             for line in context.receipt.lines]  # fmt: skip
    member_of = context.member.clubs if context.member is not None else frozenset()
    # the receipt's local day, but never later than the server's: a till's clock set ahead
    # opens no early access
    sold_at = min(context.receipt.at, context.now).astimezone(context.receipt.at.tzinfo)
    refused = refused_lines(settings, lines, member_of, sold_at.date())
    if refused:
        raise ClubOnly(refused)


def _show_privileges(sale: Sale) -> None:
    """The member's clubs in force and the flags a till shows: the clubs' and the tier's."""
    settings = handlers.settings_of(sale.program)
    member = sale.priced.context.member
    if settings is None or member is None or sale.member is None:
        return
    program = sale.program.calculator.program
    tier_flags: tuple[str, ...] = ()
    if program.tiers is not None and member.tier is not None:
        tier_flags = next((level.privileges for level in program.tiers.levels
                           if level.code == member.tier), ())  # fmt: skip
    sale.answer["clubs"] = sorted(member.clubs)
    sale.answer["privileges"] = sorted({*tier_flags, *settings.flags_of(member.clubs)})
