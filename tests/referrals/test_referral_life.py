"""A referral's life on both databases: the friend registers with the member's code,
buys, and once that purchase has stood 14 days without a refund the worker pays both
sides — once, however often it runs and however many workers run."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from kopilka.kernel.errors import InvalidInput
from kopilka.ledger.verify import verify
from kopilka.mechanics.referrals.handlers import list_referrals, member_referral
from kopilka.mechanics.referrals.tables import referral_fingerprints
from kopilka.members.handlers import read_member
from kopilka.platform.tables import transfers
from kopilka.platform.worker import run_due_work
from tests.referrals.conftest import (
    DAY,
    available,
    buy,
    code_of,
    join,
    refund,
    settle,
    with_referrals,
)
from tests.store.conftest import NOW, at_once, require_postgresql, statements_of


def referral_transfers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).where(transfers.c.transfer_key.like("zerno:referral:%"))
        ).scalar_one())  # fmt: skip


def test_an_honest_referral_pays_both_sides_once_after_the_waiting_period(cafe: Engine) -> None:
    anna = join(cafe, "100001", phone="+79120000001", email="anna@example.ru")
    code = anna["referrals"]["code"]
    assert anna["referrals"]["link"] == f"https://zerno.example/r/{code}"
    boris = join(cafe, "100002", phone="+79120000002", referral_code=code.lower(),
                 device="boris-phone")  # fmt: skip
    assert boris["referrals"]["code"] != code
    buy(cafe, "100002", at=NOW + DAY)
    earned = Decimal(available(cafe, "100002"))  # the purchase's own points
    assert settle(cafe, NOW + 14 * DAY)["referrals_paid"] == 0  # 13 days: still refundable
    assert settle(cafe, NOW + 15 * DAY)["referrals_paid"] == 1
    paid = (available(cafe, "100001"), Decimal(available(cafe, "100002")) - earned)
    assert paid == ("300.00", Decimal("150.00"))
    for day in (15, 16, 40):  # replays, and the worker's every later run
        assert settle(cafe, NOW + day * DAY)["referrals_paid"] == 0
        run_due_work(cafe, now=NOW + day * DAY)
    assert (available(cafe, "100001"), Decimal(available(cafe, "100002")) - earned) == paid
    assert referral_transfers(cafe) == 2
    mine = member_referral(cafe, "zerno", "card:100001", now=NOW + 40 * DAY)
    assert {k: mine[k] for k in ("invited", "paid", "waiting", "in_review", "rejected")} == {
        "invited": 1, "paid": 1, "waiting": 0, "in_review": 0, "rejected": 0}  # fmt: skip
    assert mine["earned"] == "300.00"
    assert read_member(cafe, "zerno", "card:100001")["referrals"]["paid"] == 1
    assert verify(cafe)[1] == []


def test_a_refund_within_the_waiting_period_pays_nothing_ever(cafe: Engine) -> None:
    join(cafe, "100001")
    join(cafe, "100002", referral_code=code_of(cafe, "100001"))
    first = buy(cafe, "100002", at=NOW + DAY)
    refund(cafe, first, at=NOW + 5 * DAY)
    buy(cafe, "100002", at=NOW + 6 * DAY)  # a later purchase does not revive it
    assert settle(cafe, NOW + 30 * DAY) == {"referrals_paid": 0, "referrals_review": 0,
                                           "referrals_rejected": 1}  # fmt: skip
    (item,) = list_referrals(cafe, "zerno")["items"]
    assert (item["status"], item["reasons"]) == ("rejected", ["first_purchase_refunded"])
    assert (available(cafe, "100001"), referral_transfers(cafe)) == ("0.00", 0)


def test_the_first_qualifying_purchase_is_the_first_that_pays_the_minimum(
    zerno_engine: Engine,
) -> None:
    with_referrals(zerno_engine, min_purchase="200.00")
    join(zerno_engine, "100001")
    join(zerno_engine, "100002", referral_code=code_of(zerno_engine, "100001"))
    assert settle(zerno_engine, NOW + 30 * DAY)["referrals_paid"] == 0  # no purchase yet
    buy(zerno_engine, "100002", at=NOW + 31 * DAY)  # 150.00: below the minimum
    buy(zerno_engine, "100002", at=NOW + 40 * DAY, qty=2)  # 300.00: this one counts
    assert settle(zerno_engine, NOW + 50 * DAY)["referrals_paid"] == 0
    assert settle(zerno_engine, NOW + 54 * DAY)["referrals_paid"] == 1


def test_an_unknown_code_refuses_the_registration_by_name(cafe: Engine) -> None:
    with pytest.raises(InvalidInput) as caught:
        join(cafe, "100002", referral_code="NOSUCHCODE")
    assert caught.value.problems[0].loc == "referral_code"
    assert "NOSUCHCODE" in caught.value.problems[0].message


def test_a_member_from_before_referrals_gets_a_code_when_asked(zerno_engine: Engine) -> None:
    join(zerno_engine, "100001")
    with_referrals(zerno_engine)
    assert read_member(zerno_engine, "zerno", "card:100001")["referrals"]["code"] is None
    first = member_referral(zerno_engine, "zerno", "card:100001", now=NOW)
    again = member_referral(zerno_engine, "zerno", "card:100001", now=NOW)
    assert first["code"] == again["code"]
    assert len(first["code"]) == 10


def test_two_workers_at_once_pay_a_referral_once(cafe: Engine) -> None:
    require_postgresql()
    if cafe.dialect.name != "postgresql":
        pytest.skip("one writer at a time on SQLite: the race is PostgreSQL's")
    join(cafe, "100001")
    code = code_of(cafe, "100001")
    for n in range(2, 8):
        join(cafe, f"10000{n}", referral_code=code)
        buy(cafe, f"10000{n}", at=NOW + DAY)
    outcomes = at_once(lambda: settle(cafe, NOW + 20 * DAY), times=3)
    assert sum(o["referrals_paid"] for o in outcomes) == 6
    assert referral_transfers(cafe) == 12
    assert available(cafe, "100001") == "1800.00"
    assert verify(cafe)[1] == []


def test_a_purchase_keeps_its_fingerprints_in_its_own_write(cafe: Engine) -> None:
    """A paying card and device cost a purchase no round trip of its own on PostgreSQL
    (they ride in its one statement; SQLite, in-process, adds to the totals after it)."""
    join(cafe, "100001")
    buy(cafe, "100001")  # warm: the program compiled, the statements prepared
    plain = statements_of(cafe, lambda: buy(cafe, "100001", at=NOW + DAY))
    payment = {"bin": "220070", "last4": "4242", "device": "iphone-7f3a"}
    marked = statements_of(cafe, lambda: buy(cafe, "100001", at=NOW + DAY, payment=payment))
    if cafe.dialect.name == "postgresql":
        assert len(marked) == len(plain)
    with cafe.connect() as connection:
        kinds = connection.execute(
            select(referral_fingerprints.c.kind, referral_fingerprints.c.uses)
            .where(referral_fingerprints.c.kind.in_(("payment_card", "device")))
            .order_by(referral_fingerprints.c.kind)
        ).all()  # fmt: skip
    assert [tuple(row) for row in kinds] == [("device", 1), ("payment_card", 1)]
