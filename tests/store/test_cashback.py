"""The cashback wallet stored: accrual, activation, payouts, clawback, budgets — on SQLite and
PostgreSQL, with `kopilka verify` proving the books after each story."""

from __future__ import annotations

import copy
import queue
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import Conflict, InvalidInput, NotFound
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.verify import verify
from kopilka.mechanics.cashback.handlers import (
    accrue_cashback,
    activate_due_cashback,
    cashback_campaigns,
    claw_back_cashback,
    decide_payout,
    export_payouts,
    list_payouts,
    member_cashback,
    preview_cashback,
    request_payout,
)
from kopilka.mechanics.cashback.model import InsufficientCashback, cashback_of, compute_cashback
from kopilka.mechanics.cashback.tables import cashback_budgets
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.idempotency import retrying
from kopilka.platform.tables import purchases, transfers
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program, load_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once

DAY = timedelta(days=1)
CASHBACK: dict[str, Any] = {
    "pending_days": 14,
    "min_payout": "500.00",
    "campaigns": [
        {
            "code": "more-you-spend",
            "name": "Чем больше, тем выше",
            "bands": [
                {"min": "0.00", "percent": 1},
                {"min": "3000.00", "percent": 3},
                {"min": "10000.00", "percent": 5},
            ],
        },
        {
            "code": "bank",
            "bands": [{"min": "0.00", "percent": 1}],
            "payment": {"methods": ["card"], "bins": ["220000-220499"]},
            "budget": "100.00",
        },
    ],
}
CARD = "4000000000000002"  # passes the Luhn check


def with_cashback(engine: Engine, **changes: Any) -> Engine:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["cashback"] = {**copy.deepcopy(CASHBACK), **changes}
    apply_program(engine, document, actor="test", now=NOW)
    return engine


@pytest.fixture
def books(zerno_engine: Engine) -> Engine:
    return with_cashback(zerno_engine)


def member(engine: Engine, card: str) -> int:
    return int(register_member(engine, "zerno", {"card": card}, now=NOW)["id"])


def buy(engine: Engine, card: str, receipt_id: str, paid: str, *, card_bin: str | None = None,
        now: Any = NOW) -> tuple[int, int, dict[str, Any] | None]:  # fmt: skip
    """A purchase paid `paid` with money, given its cashback as the purchase will (in its
    answer): its id, the money paid and the cashback answer."""
    payment = {"method": "card", **({"bin": card_bin} if card_bin else {})}
    body = {"receipt_id": receipt_id, "location": "rest-a", "member": f"card:{card}",
            "at": "2026-03-10T12:00:00+03:00", "payment": payment,
            "lines": [{"sku": "GIFT", "category": "lunch", "qty": 1, "price": paid}]}  # fmt: skip
    answer = process_purchase(engine, "zerno", body, now=now, actor="pos").answer
    purchase_id, money = int(answer["purchase_id"]), int(answer["paid"].replace(".", ""))
    given = give(engine, purchase_id, int(answer["member"]), money, card_bin, now)
    return purchase_id, money, given


def give(
    engine: Engine, purchase_id: int, member_id: int, paid: int, card_bin: str | None, now: Any
) -> dict[str, Any] | None:
    def work(connection: Any) -> dict[str, Any] | None:
        loaded = load_program(connection, "zerno")
        program = loaded.calculator.program
        awards = compute_cashback(cashback_of(program), paid=paid, location="rest-a",
                                  partner="zerno", method="card", card_bin=card_bin,
                                  at=NOW)  # fmt: skip
        given = accrue_cashback(connection, loaded.program_id, program, member_id, purchase_id,
                                awards, now, "pos")  # fmt: skip
        if given is not None:  # as the purchase will: its answer carries its cashback
            answer = connection.execute(
                select(purchases.c.answer).where(purchases.c.id == purchase_id)
            ).scalar_one()
            connection.execute(update(purchases).where(purchases.c.id == purchase_id)
                               .values(answer={**answer, "cashback": given}))  # fmt: skip
        return given

    return retrying(engine, work)


def claw(engine: Engine, purchase_id: int, refunded: int, paid: int, key: str) -> str | None:
    def work(connection: Any) -> str | None:
        loaded = load_program(connection, "zerno")
        return claw_back_cashback(connection, loaded.program_id, loaded.calculator.program,
                                  purchase_id, refunded=refunded, paid=paid, key=key, now=NOW,
                                  actor="pos")  # fmt: skip

    return retrying(engine, work)


def wallet(engine: Engine, card: str) -> dict[str, str]:
    found = member_cashback(engine, "zerno", f"card:{card}")
    return {k: found[k] for k in ("available", "pending", "requested", "debt", "paid_out",
                                  "lifetime")}  # fmt: skip


def payout(engine: Engine, card: str, amount: str, **kw: Any) -> dict[str, Any]:
    body = {"amount": amount, "destination": {"type": "card", "number": CARD}}
    return request_payout(engine, "zerno", f"card:{card}", body, actor="support", now=NOW,
                          **kw)[0]  # fmt: skip


def decide(engine: Engine, payout_id: str, action: str, body: Any = None) -> dict[str, Any]:
    return decide_payout(engine, "zerno", payout_id, action, body, actor="admin", now=NOW)[0]


def sound(engine: Engine) -> None:
    assert verify(engine)[1] == []


def test_accrued_pending_activated_requested_approved_paid(books):
    member(books, "100010")
    purchase_id, paid, given = buy(books, "100010", "R-1", "20000.00")
    assert given == {
        "amount": "1000.00",
        "status": "pending",
        "available_at": (NOW + 14 * DAY).isoformat(),
        "campaigns": [{"campaign": "more-you-spend", "percent": "5", "amount": "1000.00"}],
    }
    assert wallet(books, "100010")["pending"] == "1000.00"
    document: Any = load_document(EXAMPLES / "zerno" / "program.yaml")
    program = parse_program({**document, "cashback": CASHBACK})
    awards = compute_cashback(cashback_of(program), paid=paid, location="rest-a", partner="zerno",
                              method="card", card_bin=None, at=NOW)  # fmt: skip
    assert preview_cashback(program, awards, NOW) == given  # what a quote shows
    assert run_due_work(books, now=NOW + 13 * DAY)["cashback_activated"] == 0
    assert activate_due_cashback(books, now=NOW + 14 * DAY) == 1
    assert activate_due_cashback(books, now=NOW + 14 * DAY) == 0  # twice: nothing more
    assert wallet(books, "100010")["available"] == "1000.00"
    requested = payout(books, "100010", "600.00")
    assert (requested["status"], requested["destination"]) == (
        "requested", {"type": "card", "number": "************0002"})  # fmt: skip
    assert wallet(books, "100010")["requested"] == "600.00"
    assert decide(books, requested["id"], "approve")["status"] == "approved"
    done = decide(books, requested["id"], "paid", {"reference": "PP-17"})
    assert (done["status"], done["paid_by"], done["note"]) == ("paid", "admin", "PP-17")
    assert wallet(books, "100010") == {"available": "400.00", "pending": "0.00",
                                       "requested": "0.00", "debt": "0.00",
                                       "paid_out": "600.00", "lifetime": "1000.00"}  # fmt: skip
    reasons = _reasons(books)
    assert reasons == ["cashback.accrual", "cashback.activation", "cashback.payout.request",
                       "cashback.payout.paid"]  # fmt: skip
    sound(books)
    assert paid == 2000000
    assert purchase_id > 0


def test_a_rejected_payout_gives_the_money_back_and_steps_keep_their_order(books):
    member(books, "100011")
    buy(books, "100011", "R-1", "20000.00")
    activate_due_cashback(books, now=NOW + 14 * DAY)
    asked = payout(books, "100011", "700.00")
    with pytest.raises(Conflict):
        decide(books, asked["id"], "paid")  # not approved yet
    with pytest.raises(InvalidInput, match="reason: is required"):
        decide(books, asked["id"], "reject")
    rejected = decide(books, asked["id"], "reject", {"reason": "the card is closed"})
    assert (rejected["status"], rejected["note"]) == ("rejected", "the card is closed")
    assert decide(books, asked["id"], "reject", {"reason": "again"})["note"] == (
        "the card is closed")  # fmt: skip
    with pytest.raises(Conflict):
        decide(books, asked["id"], "approve")
    assert wallet(books, "100011")["available"] == "1000.00"
    assert wallet(books, "100011")["requested"] == "0.00"
    sound(books)


def test_a_payout_needs_the_minimum_and_no_more_than_is_available(books):
    member(books, "100012")
    buy(books, "100012", "R-1", "20000.00")
    with pytest.raises(InsufficientCashback, match=r"more than the 0\.00 of cashback available"):
        payout(books, "100012", "500.00")  # still pending
    activate_due_cashback(books, now=NOW + 14 * DAY)
    with pytest.raises(InvalidInput, match=r"below the least payout, 500\.00"):
        payout(books, "100012", "499.99")
    with pytest.raises(InsufficientCashback, match=r"1000\.01 is more than the 1000\.00"):
        payout(books, "100012", "1000.01")
    with pytest.raises(InvalidInput, match="Luhn"):
        request_payout(books, "zerno", "card:100012", {"amount": "500", "destination": {
            "type": "card", "number": "4000000000000001"}}, actor="x", now=NOW)  # fmt: skip
    with pytest.raises(NotFound):
        decide(books, "999999", "approve")
    first = payout(books, "100012", "500.00", idempotency_key="k-1")
    again = payout(books, "100012", "500.00", idempotency_key="k-1")
    assert first == again
    assert wallet(books, "100012")["requested"] == "500.00"  # once
    sound(books)


def test_a_refund_claws_back_its_share_from_pending_once_per_key(books):
    member(books, "100013")
    purchase_id, paid, given = buy(books, "100013", "R-1", "4000.00")
    assert given is not None
    assert given["amount"] == "120.00"  # 3 %
    assert claw(books, purchase_id, 100000, paid, "zerno:refund:RF-1") == "30.00"
    assert claw(books, purchase_id, 100000, paid, "zerno:refund:RF-1") == "30.00"  # a replay
    assert wallet(books, "100013")["pending"] == "90.00"
    sound(books)
    assert claw(books, purchase_id, 300000, paid, "zerno:refund:RF-2") == "90.00"  # the rest
    assert claw(books, purchase_id, 300000, paid, "zerno:refund:RF-3") == "0.00"  # never more
    assert wallet(books, "100013")["pending"] == "0.00"
    assert wallet(books, "100013")["lifetime"] == "0.00"
    assert activate_due_cashback(books, now=NOW + 14 * DAY) == 1  # nothing left: 0 moves
    assert wallet(books, "100013")["available"] == "0.00"
    sound(books)


def test_partial_refunds_in_thirds_take_back_exactly_all(books):
    member(books, "100014")
    purchase_id, paid, _ = buy(books, "100014", "R-1", "1000.00")  # 1 % = 10.00
    taken = [claw(books, purchase_id, 33333, paid, f"zerno:refund:RF-{n}") for n in range(3)]
    taken.append(claw(books, purchase_id, 1, paid, "zerno:refund:RF-last"))
    assert taken == ["3.33", "3.33", "3.33", "0.01"]
    sound(books)


def test_a_refund_of_cashback_already_paid_out_is_a_debt_later_cashback_pays(books):
    member(books, "100015")
    purchase_id, paid, _ = buy(books, "100015", "R-1", "20000.00")
    activate_due_cashback(books, now=NOW + 14 * DAY)
    asked = payout(books, "100015", "800.00")
    decide(books, asked["id"], "approve")
    decide(books, asked["id"], "paid")
    assert claw(books, purchase_id, paid, paid, "zerno:refund:RF-1") == "1000.00"
    assert wallet(books, "100015")["available"] == "0.00"
    assert wallet(books, "100015")["debt"] == "800.00"
    sound(books)
    buy(books, "100015", "R-2", "30000.00")  # 1500.00 pending: the debt is paid on activation
    activate_due_cashback(books, now=NOW + 14 * DAY)
    assert wallet(books, "100015")["debt"] == "0.00"
    assert wallet(books, "100015")["available"] == "700.00"
    assert "cashback.debt_repayment" in _reasons(books)
    sound(books)


def test_without_a_pending_period_cashback_is_available_at_once(zerno_engine):
    books = with_cashback(zerno_engine, pending_days=0)
    member(books, "100016")
    _, _, given = buy(books, "100016", "R-1", "3000.00")
    assert given is not None
    assert (given["status"], given["available_at"]) == ("available", None)
    assert wallet(books, "100016")["available"] == "90.00"
    sound(books)


def test_a_purchase_is_given_once_and_nothing_is_nothing(books):
    member_id = member(books, "100017")
    purchase_id, paid, given = buy(books, "100017", "R-1", "3000.00")
    assert give(books, purchase_id, member_id, paid, None, NOW) == given
    assert wallet(books, "100017")["pending"] == "90.00"
    assert give(books, purchase_id, member_id, 0, None, NOW) is None
    other, _, _ = buy(books, "100017", "R-2", "0.50")  # 1 % of 0.50 is under a kopeck
    assert claw(books, other, 50, 50, "zerno:refund:RF-9") is None
    sound(books)


def test_a_campaigns_budget_is_never_exceeded_by_concurrent_purchases(books):
    count = 8
    cards: queue.Queue[str] = queue.Queue()
    for n in range(count):
        member(books, f"2000{n}")
        cards.put(f"2000{n}")

    def one() -> dict[str, Any] | None:
        card = cards.get()
        body = {"receipt_id": f"B-{card}", "location": "rest-a", "member": f"card:{card}",
                "at": "2026-03-10T12:00:00+03:00",
                "payment": {"method": "card", "bin": "22010000"},
                "lines": [{"sku": "GIFT", "qty": 1, "price": "4000.00"}]}  # fmt: skip
        cashback: dict[str, Any] | None = process_purchase(
            books, "zerno", body, now=NOW, actor="pos").answer["cashback"]  # fmt: skip
        return cashback

    answers = at_once(one, count)
    bank = [c for a in answers if a for c in a["campaigns"] if c["campaign"] == "bank"]
    assert sum(int(c["amount"].replace(".", "")) for c in bank) == 10000  # 40.00 each, 100.00
    assert sum(1 for c in bank if c.get("capped") == "budget") >= 1
    with books.connect() as connection:
        spent = connection.execute(select(cashback_budgets.c.spent)).scalar_one()
    assert spent == 10000
    campaigns = {c["code"]: c for c in cashback_campaigns(books, "zerno")["campaigns"]}
    assert (campaigns["bank"]["spent"], campaigns["bank"]["left"]) == ("100.00", "0.00")
    assert campaigns["more-you-spend"]["spent"] == "960.00"  # 3 % of 4000.00, eight times
    assert campaigns["more-you-spend"]["left"] is None
    sound(books)


def test_the_payout_queue_and_its_export(books):
    for card in ("100018", "100019"):
        member(books, card)
        buy(books, card, f"R-{card}", "20000.00")
    activate_due_cashback(books, now=NOW + 14 * DAY)
    first = payout(books, "100018", "500.00")
    second = payout(books, "100019", "600.00")
    decide(books, second["id"], "approve")
    queue_ = list_payouts(books, "zerno", status="requested")
    assert [item["id"] for item in queue_["items"]] == [first["id"]]
    everything = list_payouts(books, "zerno", limit=1)
    assert [item["id"] for item in everything["items"]] == [second["id"]]
    assert everything["next"] == second["id"]
    csv = export_payouts(books, "zerno")
    header, row = csv.strip().split("\r\n")
    assert header.startswith("id,member,card,amount,currency,destination_type,destination")
    assert f"{second['id']},{second['member']},100019,600.00,RUB,card,************0002" in row
    assert CARD not in csv
    with pytest.raises(InvalidInput):
        export_payouts(books, "zerno", status="lost")


def _reasons(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(
            select(transfers.c.reason).where(transfers.c.reason.like("cashback.%"))
            .order_by(transfers.c.id)).scalars())  # fmt: skip
