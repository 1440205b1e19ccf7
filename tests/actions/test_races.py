"""Reports at once: the running counts' row locks let no limit pass twice, and one
external id is credited once (PostgreSQL, threads; SQLite serialises its writers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.mechanics.actions.handlers import ActionRefused, Reporting, report_action
from kopilka.mechanics.actions.model import Reporter
from kopilka.platform.tables import transfers
from tests.store.conftest import at_once, require_postgresql

KEY = Reporting(Reporter.PARTNER, "key:test")


def _outcome(engine: Engine, action: str, external_id: str) -> str:
    body = {"member": "card:100001", "external_id": external_id}
    try:
        answer, _ = report_action(engine, "zerno", action, body, reporting=KEY,
                                  now=datetime.now(UTC))  # fmt: skip
    except ActionRefused as error:
        return f"refused:{error.answer['refused_by']}"
    return str(answer["status"])


def _credits(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.reason == "mechanic.award")
            ).scalar_one()
        )


@pytest.fixture
def pg_engine(actions_engine: Engine) -> Any:
    if actions_engine.dialect.name != "postgresql":
        pytest.skip("threads race on PostgreSQL; SQLite has one writer at a time")
    require_postgresql()
    return actions_engine


def test_racing_reports_never_pass_a_limit_of_one_twice(pg_engine):
    ids = iter(range(100))
    outcomes = at_once(lambda: _outcome(pg_engine, "survey", f"s-{next(ids)}"), times=6)
    assert sorted(outcomes) == ["credited"] + ["refused:per_member"] * 5
    assert _credits(pg_engine) == 1


def test_racing_reports_never_pass_a_limit_per_period(pg_engine):
    ids = iter(range(100))
    outcomes = at_once(lambda: _outcome(pg_engine, "review", f"r-{next(ids)}"), times=6)
    assert sorted(outcomes) == ["credited"] * 2 + ["refused:per_period"] * 4
    assert _credits(pg_engine) == 2


def test_one_external_id_sent_at_once_is_credited_once(pg_engine):
    outcomes = at_once(lambda: _outcome(pg_engine, "invite_friend", "same"), times=6)
    assert outcomes == ["credited"] * 6  # each answered the one credit
    assert _credits(pg_engine) == 1
