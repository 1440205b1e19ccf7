"""`kopilka operators create`: an operator who can sign in, the password from stdin."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kopilka.cli import app
from kopilka.services.operators import authenticate
from kopilka.store.db import make_engine
from tests.store.conftest import NOW


def test_an_operator_is_created_and_signs_in_with_the_password_given(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    made = CliRunner().invoke(app, ["operators", "create", "--program", "zerno", "--email",
                                    "Anna@Example.RU", "--role", "support", "--password-stdin",
                                    "--db", db], input="a long secret phrase\n")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "anna@example.ru" in made.output
    engine = make_engine(db)
    assert authenticate(engine, "zerno", "anna@example.ru", "a long secret phrase", NOW) is not None
    assert authenticate(engine, "zerno", "anna@example.ru", "wrong", NOW) is None
    again = CliRunner().invoke(app, ["operators", "create", "--program", "zerno", "--email",
                                     "anna@example.ru", "--role", "support", "--password-stdin",
                                     "--db", db], input="another secret phrase\n")  # fmt: skip
    assert again.exit_code != 0
