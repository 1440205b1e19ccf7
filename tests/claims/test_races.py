"""Racing confirms of one claim — and the worker finishing a confirm cut short — make one
purchase (PostgreSQL: SQLite's one writer can't race)."""

from __future__ import annotations

import pytest
from sqlalchemy import ColumnElement, Engine, Table, func, select

from kopilka.ledger.verify import verify
from kopilka.mechanics.claims import handlers
from kopilka.mechanics.claims import status as records
from kopilka.mechanics.claims.handlers import read_claim
from kopilka.mechanics.claims.tables import claim_events
from kopilka.members.balances import balance
from kopilka.platform.tables import purchases
from kopilka.platform.worker import run_due_work
from tests.claims.conftest import CARD, HOUR, confirm, file
from tests.store.conftest import NOW, at_once, require_postgresql


@pytest.fixture
def pg_cafe(cafe: Engine) -> Engine:
    require_postgresql()
    if cafe.dialect.name != "postgresql":
        pytest.skip("one writer at a time on SQLite: the race is PostgreSQL's")
    return cafe


def count(engine: Engine, table: Table, *where: ColumnElement[bool]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())  # fmt: skip


def test_racing_confirms_make_one_purchase(pg_cafe: Engine) -> None:
    claim = file(pg_cafe)
    answers = at_once(lambda: confirm(pg_cafe, claim), times=4)
    assert {a["purchase_id"] for a in answers} == {answers[0]["purchase_id"]}
    assert {a["status"] for a in answers} == {"processed"}
    assert count(pg_cafe, purchases, purchases.c.receipt_id == claim["receipt_id"]) == 1
    steps = [e["action"] for e in read_claim(pg_cafe, "zerno", claim["id"], now=NOW)["events"]]
    assert steps == ["file", "confirm", "process"]
    assert balance(pg_cafe, "zerno", f"card:{CARD}")["available"] == "1.50"
    assert verify(pg_cafe)[1] == []


def test_two_workers_finish_confirms_cut_short_once(
    pg_cafe: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A confirm cut short after its decision (the process died before the purchase) is
    finished by the worker, once however many run; a confirm repeated afterwards changes
    nothing."""
    claims = [file(pg_cafe) for _ in range(3)]

    def killed(*_args: object, **_kw: object) -> None:
        raise RuntimeError("the process died")

    with monkeypatch.context() as patch:
        patch.setattr(handlers, "process_purchase", killed)
        for claim in claims:
            with pytest.raises(RuntimeError):
                confirm(pg_cafe, claim)
    with pg_cafe.connect() as connection:
        assert len(records.confirmed_unprocessed(connection)) == 3

    runs = at_once(lambda: run_due_work(pg_cafe, now=NOW + HOUR), times=2)
    assert sum(run.get("claims_processed", 0) for run in runs) >= 3  # a loser may count a replay
    assert confirm(pg_cafe, claims[0])["status"] == "processed"
    for claim in claims:
        assert read_claim(pg_cafe, "zerno", claim["id"], now=NOW)["status"] == "processed"
        assert count(pg_cafe, purchases, purchases.c.receipt_id == claim["receipt_id"]) == 1
        assert count(pg_cafe, claim_events, claim_events.c.claim_id == int(claim["id"]),
                     claim_events.c.action == "process") == 1  # fmt: skip
    assert balance(pg_cafe, "zerno", f"card:{CARD}")["available"] == "4.50"
    assert verify(pg_cafe)[1] == []
