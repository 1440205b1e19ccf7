"""A purchase's one statement grows with each mechanic that writes with it; psycopg
keeps its parse only up to its bounds (`kopilka.platform.db.keep_long_statements_parsed`
raises them): a purchase under three stamp cards and two challenges is parsed once, not
at every execution."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

from kopilka.checkout.purchases import process_purchase
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

STAMP_CARDS = [
    {"code": "any-visit", "stamps": 3, "per": "receipt", "reward": {"points": "10"}},
    {"code": "bakery", "stamps": 10, "per": "unit", "categories": ["bakery"],
     "reward": {"points": "50"}},
    {"code": "spend", "stamps": 100, "per": "amount", "amount": "100.00",
     "reward": {"points": "100"}},
]  # fmt: skip
CHALLENGES = [
    {"code": "visits", "goal": {"visits": 5}, "period": "month", "reward": {"points": "20"}},
    {"code": "quarter", "goal": {"spend": "100000.00"}, "period": "quarter",
     "reward": {"points": "500"}},
]  # fmt: skip


def test_the_purchase_statement_is_parsed_once(engine: Engine, monkeypatch: Any) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg's parse: PostgreSQL only")
    from psycopg import _queries

    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    apply_program(engine, {**document, "stamp_cards": STAMP_CARDS, "challenges": CHALLENGES},
                  actor="test", now=NOW)  # fmt: skip
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    def buy(receipt_id: str) -> None:
        body = {
            "receipt_id": receipt_id,
            "location": "kiosk",
            "member": "card:100001",
            "lines": [{"sku": "CAP-300", "qty": 1}, {"sku": "CRS-1", "qty": 1}],
        }
        process_purchase(engine, "zerno", body, now=NOW, actor="pos:test")

    buy("L-1")
    buy("L-2")
    write = next(sql for sql in sent if sql.startswith("WITH parent AS"))
    assert len(write) > 4096  # longer than psycopg keeps by default
    parsed_anew: list[bytes] = []
    uncached = _queries._query2pg_nocache

    def counted(query: bytes, encoding: str) -> Any:
        parsed_anew.append(query)
        return uncached(query, encoding)

    monkeypatch.setattr(_queries, "_query2pg_nocache", counted)
    buy("L-3")
    assert parsed_anew == []  # every statement of the purchase, the long one too, kept
