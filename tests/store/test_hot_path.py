"""What keeps a purchase cheap on PostgreSQL and must not quietly break: its statements
stay short enough for psycopg to keep their parse, and a purchase that needs nothing
after its write sends no statement after it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.members.balances import adjust
from kopilka.members.handlers import register_member
from tests.store.conftest import NOW, statements_of
from tests.store.test_purchases import receipt


def test_a_purchase_is_a_load_and_a_write_each_short_enough_to_keep(zerno_engine: Engine) -> None:
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("the round trips and the driver's cache are PostgreSQL's")
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH  # the driver's own limit

    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "50", "reason": "start"},
           actor="op", now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009"), now=NOW, actor="pos")
    paying = receipt(receipt_id="R-2", member="card:100009", redeem="5.00")
    sent = statements_of(zerno_engine, lambda: process_purchase(
        zerno_engine, "zerno", paying, now=NOW, actor="pos"))  # fmt: skip
    # one pipeline that begins the transaction and reads, one that writes and commits
    assert len(sent) == 2, sent
    assert sent[0].startswith("BEGIN;")
    assert sent[1].endswith("COMMIT")
    for batch in sent:
        for sql in batch.split(";\n"):
            assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, sql[:200]
