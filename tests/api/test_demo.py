"""`kopilka demo`: a café chain with members and receipts, built once, with working keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.api.app import create_app
from kopilka.demo import build_demo
from kopilka.store.verify import verify
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


def test_the_demo_command_prints_its_keys(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    command = [sys.executable, "-m", "kopilka.cli", "demo", "--db", database, "--members", "10",
               "--receipts", "50", "--no-serve"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "admin key:  kpk_" in done.stdout
    assert "demo created" in done.stdout
