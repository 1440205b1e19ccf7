"""The console's actions page: the catalogue with each action's figures, for every role
of the program; the secret's variable and whether it is set, never the secret."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.operators import handlers as operators
from kopilka.operators.handlers import create_operator
from kopilka.operators.sessions import Sessions
from tests.actions.conftest import SECRET, SECRET_ENV, actions_app
from tests.api.conftest import Api, key_for
from tests.store.conftest import NOW
from tests.web.conftest import CHEAP, PASSWORD, sign_in
from tests.web.conftest import SECRET as SESSION_SECRET


@pytest.fixture
def console(actions_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(operators, "_hasher", CHEAP)
    for role in ("admin", "analyst"):
        create_operator(actions_engine, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    app = actions_app(actions_engine)
    app.state.console_sessions = Sessions(SESSION_SECRET)
    return TestClient(app, base_url="http://testserver")


def test_the_page_lists_the_catalogue_with_its_figures(console, actions_engine):
    api = Api(console, key_for(actions_engine, "partner"))
    api.post("/actions/survey/reports", {"member": "card:100001", "external_id": "s-1"})
    api.post("/actions/survey/reports", {"member": "card:100001", "external_id": "s-2"})
    assert sign_in(console, "analyst").status_code == 303
    page = console.get("/console/zerno/actions")
    assert page.status_code == 200, page.text
    html = page.text
    for code in ("survey", "review", "newsletter", "channel_subscription", "invite_friend"):
        assert f'id="action-{code}"' in html
    survey = html.split('id="action-survey"')[1].split("</tr>")[0]
    assert "per_member: 1" in survey  # the refusal, by what stopped it
    assert SECRET_ENV in survey
    assert "secret set" in survey
    assert SECRET not in html


def test_the_page_needs_a_signed_in_operator_of_the_program(console):
    assert console.get("/console/zerno/actions", follow_redirects=False).status_code == 303
    sign_in(console, "admin")
    assert console.get("/console/north/actions").status_code == 404
