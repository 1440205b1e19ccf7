"""The actions' console page, the mechanic's `pages`: the console mounts it
(`kopilka.platform.console.routes.register`) and finds its template in this package's
`templates/` folder.

    /console/{program}/actions    the catalogue with each action's figures    every role

Read only: actions are part of the program file (changed as a new version of it). Of a
callback's shared secret the page shows the environment variable's name and whether it
is set — never the secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from kopilka.mechanics.actions import handlers as actions
from kopilka.platform.console.pages import render
from kopilka.platform.console.routes import EVERYONE, operator_of, serve
from kopilka.platform.requests import now

router = APIRouter()


@router.get("/console/{program}/actions", include_in_schema=False)
async def actions_page(request: Request, program: str) -> Response:
    engine: Engine = request.app.state.engine
    operator = await operator_of(request, engine, program, EVERYONE)
    listed = await serve(engine, actions.catalogue, engine, program, now=now())
    return render(request, "actions.html", operator=operator, program=program,
                  actions=listed["items"])  # fmt: skip
