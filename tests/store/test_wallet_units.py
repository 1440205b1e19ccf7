"""One wallet for every unit: points and cashback money move through the same `Purse`, each
in its own accounts, under its own codes and reasons — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import aliased

from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.ledger.accounts import CASHBACK, POINTS, Unit, cashback_balances, member_balances
from kopilka.ledger.wallet import Purse, Wallet
from kopilka.members.handlers import register_member
from kopilka.platform.tables import accounts, transfers
from kopilka.programs.handlers import load_program
from tests.store.conftest import NOW

ISSUANCE = {"points": AccountCode.ISSUANCE, "cashback": AccountCode.CASHBACK_ISSUANCE}


def member(engine: Engine) -> tuple[int, int]:
    """A new member of the café: (program id, member id)."""
    registered = register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    with engine.connect() as connection:
        program_id = load_program(connection, "zerno").program_id
    return program_id, int(registered["id"])


def moved(connection: Connection) -> list[tuple[Any, ...]]:
    """Every transfer as (key, from owner, from code, to owner, to code, amount, reason)."""
    debit, credit = aliased(accounts), aliased(accounts)
    rows = connection.execute(
        select(transfers.c.transfer_key, debit.c.owner, debit.c.code, credit.c.owner,
               credit.c.code, transfers.c.amount, transfers.c.reason)
        .join(debit, debit.c.id == transfers.c.debit_account_id)
        .join(credit, credit.c.id == transfers.c.credit_account_id)
        .order_by(transfers.c.id)
    )  # fmt: skip
    return [tuple(row) for row in rows]


def test_one_purse_credits_points_and_money(zerno_engine: Engine) -> None:
    program_id, member_id = member(zerno_engine)
    with zerno_engine.begin() as connection:
        points = Purse.open(connection, program_id, member_id, NOW, unit=POINTS)
        money = Purse.open(connection, program_id, member_id, NOW, unit=CASHBACK)  # opened now
        assert type(points) is type(money) is Purse
        points.credit_available("t:points", AccountCode.ISSUANCE, 1250, Reason.TRIGGER)
        money.credit_available("t:money", AccountCode.CASHBACK_ISSUANCE, 4000,
                               Reason.CASHBACK_ACCRUAL)  # fmt: skip
        assert points.balances[AccountCode.AVAILABLE] == 1250
        assert money.balances[AccountCode.CASHBACK_AVAILABLE] == 4000
        assert AccountCode.AVAILABLE not in money.balances  # neither sees the other's
        points.flush(actor="test")
        money.flush(actor="test")

    with zerno_engine.connect() as connection:
        points_rows = member_balances(connection, program_id, member_id)
        money_rows = cashback_balances(connection, program_id, member_id, lock=False)
        assert moved(connection) == [
            ("t:points", "program", "issuance", f"member:{member_id}", "available", 1250,
             "trigger"),
            ("t:money", "program", "cashback.issuance", f"cashback:{member_id}",
             "cashback.available", 4000, "cashback.accrual"),
        ]  # fmt: skip
    assert {code: value for code, (_, value) in points_rows.items()} == {
        AccountCode.AVAILABLE: 1250, AccountCode.PENDING: 0, AccountCode.HELD: 0,
        AccountCode.DEBT: 0,
    }  # fmt: skip
    assert {code: value for code, (_, value) in money_rows.items()} == {
        AccountCode.CASHBACK_AVAILABLE: 4000, AccountCode.CASHBACK_PENDING: 0,
        AccountCode.CASHBACK_REQUESTED: 0, AccountCode.CASHBACK_DEBT: 0,
    }  # fmt: skip


@pytest.mark.parametrize("unit", [POINTS, CASHBACK], ids=lambda unit: unit.name)
def test_a_credit_pays_the_debt_of_its_own_unit_first(zerno_engine: Engine, unit: Unit) -> None:
    program_id, member_id = member(zerno_engine)
    with zerno_engine.begin() as connection:
        purse = Purse.open(connection, program_id, member_id, NOW, unit=unit)
        purse.balances[unit.debt] = 300  # as a refund of spent points / paid-out money leaves it
        kept = purse.credit_available("t:credit", ISSUANCE[unit.name], 500, Reason.ADJUSTMENT)
    assert kept == 200
    assert [(p.key, p.debit.code, p.credit.code, p.amount, p.reason) for p in purse.postings] == [
        ("t:credit", ISSUANCE[unit.name], unit.available, 500, Reason.ADJUSTMENT),
        ("t:credit:debt", unit.available, unit.debt, 300, unit.repayment),
    ]
    assert {p.credit.owner for p in purse.postings} == {f"{unit.owner}:{member_id}"}
    assert purse.balances[unit.available] == 200
    assert purse.balances[unit.debt] == 0


def test_a_purse_never_moves_another_units_accounts(zerno_engine: Engine) -> None:
    program_id, member_id = member(zerno_engine)
    with zerno_engine.begin() as connection:
        points = Purse.open(connection, program_id, member_id, NOW, unit=POINTS)
        with pytest.raises(ValueError, match=r"cashback\.issuance is not an account of points"):
            points.move("t:mixed", AccountCode.CASHBACK_ISSUANCE, AccountCode.AVAILABLE, 100,
                        Reason.ADJUSTMENT)  # fmt: skip
        assert points.postings == []
        assert points.balances[AccountCode.AVAILABLE] == 0


def test_the_points_wallet_is_a_points_purse_and_units_know_their_precision(
    zerno_engine: Engine,
) -> None:
    program_id, member_id = member(zerno_engine)
    with zerno_engine.begin() as connection:
        program = load_program(connection, "zerno").calculator.program
        wallet = Wallet.open(connection, program_id, program, member_id, NOW)
    assert isinstance(wallet.purse, Purse)
    assert wallet.purse.unit is POINTS
    assert wallet.balances is wallet.purse.balances
    assert POINTS.digits(program) == program.points.precision
    assert CASHBACK.digits(program) == program.money_digits
