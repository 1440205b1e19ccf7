"""`kopilka verify` proves the books from the rows, and catches each corruption made by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from kopilka.checkout.mechanic import mechanics
from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import CHECKS as LEDGER_CHECKS
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt


@pytest.fixture
def books(zerno_engine: Engine) -> Engine:
    """A member with an adjustment, two purchases (one redeeming) and a partial refund."""
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "50", "reason": "start"},
           actor="op", now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009"), now=NOW, actor="pos")
    second = process_purchase(zerno_engine, "zerno", receipt(
        receipt_id="R-2", member="card:100009", redeem="20.00"), now=NOW, actor="pos")  # fmt: skip
    part = {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}
    refund_purchase(zerno_engine, "zerno", second.answer["purchase_id"], part, actor="pos", now=NOW)
    held = receipt(receipt_id="R-3", member="card:100009", redeem="1.00", hold=True)
    third = process_purchase(zerno_engine, "zerno", held, now=NOW, actor="pos")
    settle_hold(zerno_engine, "zerno", third.answer["purchase_id"], "cancel", actor="pos", now=NOW)
    held = receipt(receipt_id="R-4", member="card:100009", redeem="2.00", hold=True)
    process_purchase(zerno_engine, "zerno", held, now=NOW, actor="pos")
    return zerno_engine


def tamper(engine: Engine, statement: str) -> None:
    """Change rows behind the services' back (on PostgreSQL past the append-only trigger)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(statement))


def failed_checks(engine: Engine) -> set[str]:
    return {d.check for d in verify(engine)[1]}


def test_sound_books_pass_every_check(books):
    checks, found = verify(books)
    # the ledger's own, then each registered mechanic's (stamp cards, challenges, the
    # coalition, exchange, clubs, charity, claims …), every one run
    expected = [name for name, _ in LEDGER_CHECKS]
    expected += [name for mechanic in mechanics() for name, _ in mechanic.checks]
    assert checks[: len(expected)] == expected
    assert len(checks) == len(expected) + 3  # and the three the ledger makes in Python
    assert found == []


@pytest.mark.parametrize(
    ("corruption", "caught_by"),
    [
        ("update accounts set credits_posted = credits_posted + 1 where member_id is not null "
         "and code = 'available'", "member accounts' cached totals equal their transfers"),
        ("update transfers set amount = amount + 100 where reason = 'purchase.accrual'",
         "purchase records equal their transfers"),
        ("delete from transfers where reason = 'adjustment'",
         "member accounts' cached totals equal their transfers"),
        ("update accounts set debits_posted = 5 where owner = 'program' and code = 'issuance'",
         "program accounts cache no totals"),
        ("update transfers set reason = 'adjustment' where reason = 'purchase.redemption'",
         "purchases move points only as accrual and redemption, only for members"),
        ("update transfers set amount = amount * 10 where reason = 'refund.redemption'",
         "refunds move back no more than their purchase moved"),
        ("update transfers set amount = 0 where reason = 'adjustment'",
         "transfers stay within their program and move positive amounts"),
        ("update lots set remaining = remaining - 1 where remaining > 0",
         "lots add up to the balances they index"),
        ("update holds set status = 'cancelled' where status = 'held'",
         "held points equal the open holds"),
        ("insert into transfers (program_id, transfer_key, debit_account_id, credit_account_id,"
         " amount, reason, actor, purchase_id, created_at) select t.program_id, 'forged',"
         " t.debit_account_id, r.id, t.amount, 'purchase.redemption', 'x', t.purchase_id,"
         " t.created_at from transfers t join accounts r on r.owner = 'program'"
         " and r.code = 'redeemed' where t.reason = 'hold.cancel'",
         "no hold is both paid and given back"),
        ("update transfers set amount = amount + 1 where reason = 'refund.accrual'",
         "refund records equal their transfers"),
        ("insert into transfers (program_id, transfer_key, debit_account_id, credit_account_id,"
         " amount, reason, actor, purchase_id, created_at) select t.program_id, 'burnt ' || t.id,"
         " t.credit_account_id, x.id, t.amount * 2, 'expiry', 'x', t.purchase_id, t.created_at"
         " from transfers t join accounts x on x.owner = 'program' and x.code = 'expired'"
         " where t.reason = 'purchase.accrual'",
         "a purchase's points leave the member once: burnt or taken back"),
        ("update purchase_lines set accrued = accrued + 1 where accrued > 0",
         "purchase lines and awards add up to their purchase"),
        ("delete from purchase_awards where kind = 'redemption'",
         "purchase lines and awards add up to their purchase"),
        ("update member_days set spend = spend + 1",
         "members' kept standing equals their purchases, refunds and transfers"),
        ("update member_totals set purchases = purchases + 1",
         "members' kept standing equals their purchases, refunds and transfers"),
        ("update member_totals set points_redeemed = points_redeemed - 1",
         "members' kept standing equals their purchases, refunds and transfers"),
        ("delete from member_totals",
         "members' kept standing equals their purchases, refunds and transfers"),
        ("update member_expiring set points = points + 1",
         "members' expiring points equal their lots"),
        ("delete from member_expiring",
         "members' expiring points equal their lots"),
    ],
)  # fmt: skip
def test_each_corruption_is_caught(books, corruption, caught_by):
    if "amount = 0" in corruption:
        with books.begin() as connection:  # the check constraint is the first line of defence
            if books.dialect.name == "sqlite":
                connection.execute(text("PRAGMA ignore_check_constraints = ON"))
            else:
                drop = "ALTER TABLE transfers DROP CONSTRAINT ck_transfers_amount_positive"
                connection.execute(text(drop))
    tamper(books, corruption)
    assert caught_by in failed_checks(books)


@pytest.mark.slow
def test_the_command_exits_non_zero_and_names_the_discrepancy(tmp_path: Path, templates):
    url = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    engine = templates.sqlite(tmp_path / "k.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    process_purchase(engine, "zerno", receipt(member="card:100009"), now=NOW, actor="pos")
    kopilka = str(Path(sys.executable).parent / "kopilka")
    sound = subprocess.run([kopilka, "verify", "--db", url], capture_output=True, text=True)
    assert sound.returncode == 0, sound.stdout
    assert "the ledger is sound" in sound.stdout
    tamper(engine, "update accounts set credits_posted = 1 where code = 'available'")
    broken = subprocess.run([kopilka, "verify", "--db", url], capture_output=True, text=True)
    assert broken.returncode == 1
    assert "FAIL" in broken.stdout
    assert "cached 0/1, transfers 0/290" in broken.stdout
