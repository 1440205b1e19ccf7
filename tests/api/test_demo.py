"""`kopilka demo`: a café chain with members and receipts, built once, with working keys."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from kopilka.demo import FEMALE_NAMES, MALE_NAMES, build_demo, female_surname, program_document
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.verify import verify
from kopilka.platform.http.app import create_app
from kopilka.platform.tables import member_profiles, purchases
from tests.databases import Templates
from tests.store.conftest import NOW


def test_the_demo_is_built_once_and_its_keys_work(engine: Engine) -> None:
    first = build_demo(engine, now=NOW, members_count=30, receipts_count=300)
    again = build_demo(engine, now=NOW, members_count=30, receipts_count=300)
    assert (first.created, again.created) == (True, False)
    assert (again.members, again.receipts) == (30, first.receipts)
    assert first.receipts > 250  # nearly every receipt goes through
    assert verify(engine)[1] == []
    with TestClient(create_app(engine)) as client:
        for key in (first.admin_key, again.admin_key):
            answer = client.get(f"/v1/programs/zerno/members/{again.sample_member}/balance",
                                headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.json()["lifetime_accrued"] != "0.00"


@pytest.mark.slow
def test_the_demo_command_prints_its_keys(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    command = [sys.executable, "-m", "kopilka.cli", "demo", "--db", database, "--members", "10",
               "--receipts", "50", "--no-serve"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "admin key:  kpk_" in done.stdout
    assert "demo created" in done.stdout
    console_line = next(line for line in done.stdout.splitlines() if line.startswith("console:"))
    assert "/console/login" in console_line
    assert "program zerno" in console_line  # what the sign-in page asks for


# what the demo's program file promises (kopilka/demo/zerno.yaml, `accrual`)
CAPS = parse_program(program_document()).accrual
LINE_CAP = Decimal(CAPS.max_percent or 0) / 100
RECEIPT_CAP = Decimal(CAPS.max_points_per_receipt or 0).scaleb(-2)


@pytest.mark.slow
def test_the_demos_figures_are_a_cafes(tmp_path: Path, templates: Templates) -> None:
    """Points issued a few percent of the turnover, no line or receipt above the caps —
    not the 161 % of a K1 × K2 × K3 stack left unbounded."""
    engine = templates.sqlite(tmp_path / "demo.sqlite3")
    build_demo(engine, now=NOW, members_count=100, receipts_count=1500)
    with engine.connect() as connection:
        answers = connection.execute(select(purchases.c.answer)).scalars().all()
    turnover = sum(Decimal(answer["total"]) for answer in answers)
    issued = sum(Decimal(answer["accrued"]) for answer in answers)
    assert Decimal("0.01") < issued / turnover < Decimal("0.08"), (issued, turnover)
    assert max(Decimal(answer["accrued"]) for answer in answers) == RECEIPT_CAP  # it bites
    for answer in answers:
        assert Decimal(answer["accrued"]) <= RECEIPT_CAP
        for line in answer["lines"]:
            paid = Decimal(line["amount"]) - Decimal(line["redeemed"])
            # the cap bounds the exact points; the receipt's one rounding, spread over its
            # lines by largest remainder, may give a line the unit its share rounds up to
            assert Decimal(line["accrued"]) < paid * LINE_CAP + Decimal("0.01"), line
    capped = [entry["cap"] for answer in answers for line in answer["lines"]
              for entry in line["explain"] if "cap" in entry]  # fmt: skip
    assert set(capped) == {"accrual.max_percent", "accrual.max_points_per_receipt"}


def test_the_demos_names_agree_in_gender(engine: Engine) -> None:
    build_demo(engine, now=NOW, members_count=60, receipts_count=0)
    with engine.connect() as connection:
        names = connection.execute(select(member_profiles.c.name)).scalars().all()
    assert len(names) == 60
    for name in names:
        first, surname = name.split()
        if first in FEMALE_NAMES:
            assert surname.endswith(("ова", "ева", "ина", "ая")), name
        else:
            assert first in MALE_NAMES, name
            assert surname.endswith(("ов", "ев", "ин", "ий")), name
    assert female_surname("Вишневский") == "Вишневская"
    assert female_surname("Ильин") == "Ильина"
