"""`kopilka operators create`: an operator who can sign in, the password from stdin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from kopilka.cli import app
from kopilka.members.handlers import register_member
from kopilka.operators.handlers import authenticate
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.databases import Templates
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


def test_a_members_personal_link_is_printed(
    tmp_path: Path, monkeypatch: Any, templates: Templates
) -> None:
    db = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    engine = templates.sqlite(tmp_path / "k.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    monkeypatch.setenv("KOPILKA_SECRET", "s" * 32)
    arguments = ["members", "link", "card:100001", "--program", "zerno",
                 "--base-url", "https://loyalty.example", "--db", db]  # fmt: skip
    made = CliRunner().invoke(app, arguments)
    assert made.exit_code == 0, made.output
    assert made.output.strip().startswith("https://loyalty.example/m/")
