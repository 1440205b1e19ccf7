"""Programs, members and purchases stored: exactly once, on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import Duplicate, IdempotencyConflict, InsufficientPoints, NotFound
from kopilka.kernel.ledger import is_luhn_valid
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.migrate import is_current
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

RECEIPT: dict[str, Any] = {
    "receipt_id": "R-1",
    "location": "kiosk",
    "at": "2026-03-10T11:00:00+03:00",
    "lines": [{"sku": "TEA-400", "qty": 1}, {"sku": "CRS-1", "qty": 1}],
}


def receipt(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(RECEIPT), **changes}


def buy(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    return process_purchase(engine, "zerno", body, now=NOW, actor="pos:test").answer


def test_a_migrated_database_is_current(engine):
    assert is_current(engine)


def test_applying_the_same_program_twice_keeps_one_version_and_a_change_makes_another(engine):
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    first = apply_program(engine, document, actor="test", now=NOW)
    again = apply_program(engine, document, actor="test", now=NOW)
    changed: Any = copy.deepcopy(document)
    changed["name"] = "Зерно 2"
    second = apply_program(engine, changed, actor="test", now=NOW)
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False)
    assert (second.version, second.created) == (2, True)


def test_a_member_gets_a_luhn_card_an_e164_phone_and_a_lower_case_email(zerno_engine):
    member = register_member(
        zerno_engine, "zerno", {"phone": "8 (912) 345-67-89", "email": "Anna@Example.RU"}, now=NOW
    )
    assert is_luhn_valid(member["card"])
    assert (member["phone"], member["email"]) == ("+79123456789", "anna@example.ru")


@pytest.mark.parametrize("field", ["card", "phone", "email"])
def test_a_duplicate_card_phone_or_email_is_refused(zerno_engine, field):
    data = {"card": "100001", "phone": "+79123456789", "email": "a@b.ru"}
    register_member(zerno_engine, "zerno", data, now=NOW)
    other = {"card": "100002", "phone": "+79120000000", "email": "c@d.ru"}
    other[field] = data[field]
    with pytest.raises(Duplicate):
        register_member(zerno_engine, "zerno", other, now=NOW)


def test_a_purchase_accrues_points_to_the_balance_and_records_its_version(zerno_engine):
    member = register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    answer = buy(zerno_engine, receipt(member="card:100009"))
    assert (answer["accrued"], answer["status"], answer["member"]) == (
        "2.90", "completed", member["id"])  # fmt: skip
    assert answer["balance"] == {"available": "2.90", "pending": "0.00", "held": "0.00"}
    assert answer["program_version"] == 1
    second = buy(zerno_engine, receipt(receipt_id="R-2", member="card:100009", redeem="max"))
    # 2.90 points pay for 2.90 of 290.00; 287.10 paid × 1 % = 2.87
    assert (second["redeemed"], second["accrued"]) == ("2.90", "2.87")
    assert second["balance"]["available"] == "2.87"


def test_the_same_receipt_again_answers_the_first_result_with_no_second_effect(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    first = process_purchase(zerno_engine, "zerno", receipt(member="card:100009"), now=NOW,
                             actor="pos")  # fmt: skip
    again = process_purchase(zerno_engine, "zerno", receipt(member="card:100009"), now=NOW,
                             actor="pos")  # fmt: skip
    assert (first.created, again.created) == (True, False)
    assert again.answer == first.answer
    third = buy(zerno_engine, receipt(receipt_id="R-3", member="card:100009"))
    assert third["balance"]["available"] == "5.80"  # 2.90 twice, not three times


def test_the_same_receipt_id_with_another_body_is_an_idempotency_conflict(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    buy(zerno_engine, receipt(member="card:100009"))
    with pytest.raises(IdempotencyConflict):
        buy(zerno_engine, receipt(member="card:100009", lines=[{"sku": "TEA-400", "qty": 2}]))


def test_redeeming_more_than_the_balance_writes_nothing(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    with pytest.raises(InsufficientPoints):
        buy(zerno_engine, receipt(member="card:100009", redeem="1.00"))
    retry = buy(zerno_engine, receipt(member="card:100009"))  # the id was never used
    assert retry["accrued"] == "2.90"


def test_an_unknown_member_or_program_is_not_found(zerno_engine):
    with pytest.raises(NotFound):
        buy(zerno_engine, receipt(member="card:404"))
    with pytest.raises(NotFound):
        process_purchase(zerno_engine, "nope", receipt(), now=NOW, actor="pos")


def test_a_receipt_without_a_member_is_recorded_and_accrues_nothing(zerno_engine):
    answer = buy(zerno_engine, receipt())
    assert (answer["accrued"], answer["member"], answer["balance"]) == ("0.00", None, None)


def test_transfers_balance_and_match_the_cached_member_totals(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    buy(zerno_engine, receipt(member="card:100009"))
    buy(zerno_engine, receipt(receipt_id="R-2", member="card:100009", redeem="max"))
    with zerno_engine.connect() as connection:
        for account_id, debits, credits in connection.execute(
            text(
                "select id, debits_posted, credits_posted from accounts where member_id is not null"
            )
        ):
            moved_out = connection.execute(text(
                "select coalesce(sum(amount), 0) from transfers where debit_account_id = :a"
            ), {"a": account_id}).scalar_one()  # fmt: skip
            moved_in = connection.execute(text(
                "select coalesce(sum(amount), 0) from transfers where credit_account_id = :a"
            ), {"a": account_id}).scalar_one()  # fmt: skip
            assert (debits, credits) == (moved_out, moved_in)


def test_ledger_rows_cannot_be_changed_on_postgresql(zerno_engine):
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    buy(zerno_engine, receipt(member="card:100009"))
    for statement in ("update transfers set amount = amount + 1", "delete from transfers"):
        with pytest.raises(DBAPIError, match="append-only"), zerno_engine.begin() as connection:
            connection.execute(text(statement))
