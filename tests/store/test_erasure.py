"""The right to erasure: personal data gone, the ledger whole and verifiable."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import Conflict, NotFound
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import erase_member, find_member, register_member
from kopilka.platform.tables import member_profiles, transfers
from kopilka.programs.handlers import load_program
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

PERSON = {"card": "100009", "phone": "+7 916 123-45-67", "email": "Anna@Example.ru",
          "name": "Анна", "birthday": "1990-05-01", "external_id": "crm-1"}  # fmt: skip


def test_erasing_a_member_deletes_their_personal_data_and_keeps_the_books(zerno_engine):
    member = register_member(zerno_engine, "zerno", PERSON, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "20", "reason": "gift"}, actor="op",
           now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009", redeem="5.00"),
                     now=NOW, actor="pos")  # fmt: skip
    erased = erase_member(zerno_engine, "zerno", "phone:+79161234567", actor="dpo", now=NOW)
    assert erased["status"] == "erased"
    assert (erased["phone"], erased["email"], erased["name"], erased["external_id"]) == (
        None, None, None, None)  # fmt: skip
    with zerno_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(member_profiles)).scalar() == 0
        reasons = connection.execute(select(transfers.c.reason)).scalars().all()
        for ref in ("phone:+79161234567", "email:anna@example.ru", "ext:crm-1"):
            with pytest.raises(NotFound):
                find_member(connection, load_program(connection, "zerno").program_id, ref)
    assert "erasure.forfeit" in reasons
    assert balance(zerno_engine, "zerno", member["id"])["available"] == "0.00"
    assert verify(zerno_engine)[1] == []
    again = erase_member(zerno_engine, "zerno", member["id"], actor="dpo", now=NOW)
    assert again == erased


def test_an_erased_member_buys_nothing_more(zerno_engine):
    member = register_member(zerno_engine, "zerno", PERSON, now=NOW)
    erase_member(zerno_engine, "zerno", member["id"], actor="dpo", now=NOW)
    with pytest.raises(Conflict, match="erased"):
        process_purchase(zerno_engine, "zerno", receipt(member=member["id"]), now=NOW,
                         actor="pos")  # fmt: skip


def test_a_member_with_held_points_is_not_erased_until_the_hold_settles(zerno_engine):
    register_member(zerno_engine, "zerno", PERSON, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "20", "reason": "gift"}, actor="op",
           now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009", redeem="5.00",
                     hold=True), now=NOW, actor="pos")  # fmt: skip
    with pytest.raises(Conflict, match="held"):
        erase_member(zerno_engine, "zerno", "card:100009", actor="dpo", now=NOW)
