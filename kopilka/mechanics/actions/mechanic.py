"""The actions mechanic's hooks: points for actions beyond purchases (docs/actions.md).

It takes no part in a purchase: reports come by their own routes (`routes`), and the
mechanic brings those routes, its console page, its tables' migration branch, and its
part of a member's document — how many reports each action credited them, and the
points actions gave them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kopilka.checkout.mechanic import JSON, Mechanic, Step
from kopilka.mechanics.actions import pages, routes
from kopilka.mechanics.actions.handlers import member_summary

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Actions(Mechanic):
    name = "actions"
    step = Step.LATER
    router = routes.router
    pages = pages.router
    console_link = ("actions", "Points for actions")
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> JSON | None:
        del now  # the counts are as they stand
        return member_summary(connection, program, member_id)
