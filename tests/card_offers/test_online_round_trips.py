"""A feed message online (`handlers.take_message`) costs PostgreSQL three round trips at
most, whatever it claims, and must not quietly cost more: one pipeline that begins the
transaction and reads (the card locked first), one that locks the claimed offers'
budgets and reads their rewards, one statement that writes every row and commits. A
message that claims nothing skips the second; a message taken before is answered from
the first. The statements are counted as bench/clo_online_bench.py counts them
(SQLAlchemy's `before_cursor_execute`: a pipeline is one). And, on both databases, a
message and its copy sent at the same moment are taken once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.kernel.errors import IdempotencyConflict
from kopilka.ledger.verify import verify
from kopilka.mechanics.card_offers import handlers
from kopilka.mechanics.card_offers.tables import clo_reviews, clo_transactions
from kopilka.platform.idempotency import Answer
from kopilka.platform.tables import webhook_outbox
from tests.store.conftest import at_once, statements_of

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CAFE = {"name": "Кофейня", "locations": [
    {"code": "cafe-1", "descriptor": "CAFE ONE", "mcc": "5814",
     "merchant_ids": {"visa": "111"}}]}  # fmt: skip
OFFER = {
    "merchant": "cafe", "starts": "2026-11-01", "until": "2026-12-31",
    "cashback": {"percent": "10"}, "max_cashback": "500.00", "min_amount": "300.00",
    "weekdays": [1, 2, 3, 4, 5, 6, 7], "activation_required": False, "return_days": 30,
    "budget": "1000.00", "fee": {"percent": "2", "fixed": "1.00"},
}  # fmt: skip
AUTH = {
    "transaction_id": "A-1", "kind": "authorisation", "card": "tok-anna", "amount": "1000.00",
    "currency": "RUB", "at": "2026-12-03T12:00:00+03:00", "scheme": "visa",
    "merchant_id": "111", "descriptor": "CAFE ONE 0012", "mcc": "5814",
}  # fmt: skip
CARD = {"scheme": "visa", "first_six": "427600", "last_four": "1234"}


@pytest.fixture
def cafe(zerno_engine: Engine) -> Engine:
    """A café with two offers (each a purchase there claims), two cards, and a first
    message taken (the catalog cached, the program compiled, the statements prepared)."""
    handlers.put_merchant(zerno_engine, "zerno", "cafe", CAFE, now=NOW)
    for code in ("tenth", "tithe"):
        handlers.put_offer(zerno_engine, "zerno", code, OFFER, actor="test", now=NOW)
    for token in ("tok-anna", "tok-boris"):
        handlers.put_card(zerno_engine, "zerno", token, CARD, now=NOW)
    take(zerno_engine, transaction_id="A-0")
    return zerno_engine


def take(engine: Engine, **changes: Any) -> Answer:
    return handlers.take_message(engine, "zerno", {**AUTH, **changes}, now=NOW)


def test_a_message_is_three_round_trips_at_most(cafe: Engine) -> None:
    if cafe.dialect.name != "postgresql":
        pytest.skip("the round trips are PostgreSQL's (SQLite's statements are in-process)")
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH  # the driver's own limit

    def sent(**changes: Any) -> list[str]:
        return statements_of(cafe, lambda: take(cafe, **changes))

    claiming = {
        "authorised": sent(),
        "cleared": sent(transaction_id="C-1", kind="clearing", original="A-1",
                        amount="900.00"),
        "refunded": sent(transaction_id="R-1", kind="refund", original="A-1",
                         amount="300.00"),
    }  # fmt: skip
    for kind, batches in claiming.items():
        # reads, with our BEGIN; budgets (locked in id order) and rewards; the write
        assert len(batches) == 3, (kind, batches)
        assert batches[0].startswith("BEGIN;"), kind  # no BEGIN of the driver's own
        assert "FOR UPDATE" in batches[1], kind
        assert batches[2].endswith("COMMIT"), kind  # its COMMIT in the write's round trip
        for batch in batches:
            for sql in batch.split(";\n"):
                assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, sql[:200]
    unmatched = sent(transaction_id="U-1", merchant_id=None, descriptor="ЛАВКА У ДОМА 7")
    assert len(unmatched) == 2, unmatched  # nothing claimed: no budget to lock
    assert unmatched[1].endswith("COMMIT")
    assert len(sent()) == 1  # taken before: its answer, from the reads
    with pytest.raises(IdempotencyConflict):
        take(cafe, amount="5.00")
    with cafe.connect() as connection:
        review = connection.execute(select(clo_reviews.c.descriptor)).scalar_one()
    assert review == "ЛАВКА У ДОМА 7"  # the review queued in the same statement
    assert verify(cafe)[1] == []


def test_a_message_and_its_copy_at_once_are_taken_once(cafe: Engine) -> None:
    made = at_once(lambda: take(cafe))
    assert made[0][0] == made[1][0]  # one answer, given twice
    assert sorted(created for _, created in made) == [False, True]
    assert written(cafe, "A-1") == (1, 2)  # one row, a webhook per offer


def test_another_message_with_the_same_id_at_once_is_a_conflict(cafe: Engine) -> None:
    """Another card's message: no lock in common, so the transaction id's unique key
    decides, and the one that lost it is retried, to find the conflict."""

    def either(card: str) -> Callable[[], str]:
        def send() -> str:
            try:
                take(cafe, card=card)
            except IdempotencyConflict:
                return "conflict"
            return "made"

        return send

    sends = iter((either("tok-anna"), either("tok-boris")))
    outcomes = at_once(lambda: next(sends)())
    assert sorted(outcomes) == ["conflict", "made"]
    assert written(cafe, "A-1") == (1, 2)
    assert verify(cafe)[1] == []


def written(engine: Engine, transaction_id: str) -> tuple[int, int]:
    """The message's transaction rows, and its webhooks."""
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).where(
            clo_transactions.c.transaction_id == transaction_id)).scalar_one()  # fmt: skip
        hooks = connection.execute(select(func.count()).where(
            webhook_outbox.c.event_key.startswith(f"{transaction_id}:"))).scalar_one()  # fmt: skip
    return int(rows), int(hooks)
