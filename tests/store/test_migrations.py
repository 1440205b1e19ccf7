"""Migrations: the schema they build is the one the code declares, and an upgrade keeps data."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kopilka.checkout.purchases import process_purchase
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.migrate import downgrade, is_current, upgrade
from kopilka.platform.tables import metadata
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

# what these tests check is the migrations themselves: a database migrated by `upgrade`,
# not a copy of the run's template
pytestmark = pytest.mark.real_migration


def test_the_migrated_schema_is_the_declared_one(engine):
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_an_upgrade_from_before_lots_builds_them_from_the_balances(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "10", "reason": "start"},
           actor="op", now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009", redeem="4.00"),
                     now=NOW, actor="pos")  # fmt: skip
    downgrade(zerno_engine, "0002")
    assert not is_current(zerno_engine)
    upgrade(zerno_engine)
    assert verify(zerno_engine)[1] == []
    process_purchase(zerno_engine, "zerno", receipt(receipt_id="R-2", member="card:100009",
                     redeem="max"), now=NOW, actor="pos")  # fmt: skip
    assert (
        balance(zerno_engine, "zerno", "card:100009")["available"] == "2.81"
    )  # 8.86 paid, 281.14 × 1 %
    assert verify(zerno_engine)[1] == []
