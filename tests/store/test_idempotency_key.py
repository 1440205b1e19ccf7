"""`Idempotency-Key`: the same key and body answer the first result; another body conflicts."""

from __future__ import annotations

import pytest

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import IdempotencyConflict
from kopilka.members.balances import balance
from kopilka.members.handlers import register_member
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt


def test_a_key_replays_the_first_answer_with_no_second_effect(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    body = receipt(member="card:100009")
    first = process_purchase(zerno_engine, "zerno", body, now=NOW, actor="pos",
                             idempotency_key="k-1")  # fmt: skip
    again = process_purchase(zerno_engine, "zerno", body, now=NOW, actor="pos",
                             idempotency_key="k-1")  # fmt: skip
    assert first.created
    assert not again.created
    assert again.answer == first.answer
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "2.90"


def test_a_key_with_another_body_is_a_conflict_and_writes_nothing(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009"), now=NOW, actor="pos",
                     idempotency_key="k-1")  # fmt: skip
    with pytest.raises(IdempotencyConflict, match="k-1"):
        process_purchase(zerno_engine, "zerno", receipt(receipt_id="R-2", member="card:100009"),
                         now=NOW, actor="pos", idempotency_key="k-1")  # fmt: skip
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "2.90"
