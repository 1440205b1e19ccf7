"""The sign-in page fills in the program when the server has only one (the demo's, a
café's), so an operator types their email and password alone; with several it asks."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.programs.handlers import apply_program
from tests.store.conftest import NOW
from tests.web.conftest import console_app


def program_field(page: str) -> str:
    field = re.search(r'<input name="program" value="([^"]*)"[^>]*>', page)
    assert field is not None, page
    return field[0]


def value_of(page: str) -> str:
    found = re.search(r'value="([^"]*)"', program_field(page))
    assert found is not None
    return found[1]


def test_the_only_program_is_filled_in_and_the_email_has_the_focus(zerno_engine: Engine):
    with TestClient(console_app(zerno_engine)) as client:
        page = client.get("/console/login").text
    assert value_of(page) == "zerno"
    assert "autofocus" not in program_field(page)
    assert re.search(r'<input name="email"[^>]*autofocus', page)


def test_with_several_programs_the_field_is_left_to_the_operator(zerno_engine: Engine):
    apply_program(zerno_engine, {"code": "north", "currency": "RUB"}, actor="test", now=NOW)
    with TestClient(console_app(zerno_engine)) as client:
        page = client.get("/console/login").text
        asked = client.get("/console/login", params={"program": "north"}).text
    assert value_of(page) == ""
    assert "autofocus" in program_field(page)
    assert value_of(asked) == "north"  # a redirect to the sign-in names the program


def test_an_empty_database_asks_for_the_program(engine: Engine):
    with TestClient(console_app(engine)) as client:
        assert value_of(client.get("/console/login").text) == ""
