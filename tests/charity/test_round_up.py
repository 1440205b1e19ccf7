"""A member's purchases round up to their charity: the part of the points below a whole
step goes to it in the purchase's own write; a hold rounds up at its confirm; a refund
takes the purchase's points back whole (the round-up stands)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import quote_purchase
from kopilka.kernel.ledger import AccountCode
from kopilka.ledger.accounts import member_balances
from kopilka.mechanics.charity.handlers import stop
from kopilka.mechanics.charity.tables import charity_donations
from kopilka.members.balances import make_adjustment
from kopilka.platform.tables import programs, transfers
from kopilka.programs.handlers import apply_program
from tests.charity.conftest import (
    CHARITY,
    DAY,
    NOW,
    available,
    buy,
    charity_balance,
    join,
    lots_left,
    program_with_charity,
    refund,
    round_up_to,
    settle,
    sound,
)
from tests.store.conftest import statements_of


def _round_ups(engine: Engine) -> list[tuple[int | None, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(charity_donations.c.purchase_id, charity_donations.c.points)
            .where(charity_donations.c.kind == "round_up")
            .order_by(charity_donations.c.id)
        ).all()  # fmt: skip
    return [(row.purchase_id, row.points) for row in rows]


def test_a_purchase_gives_the_part_below_a_whole_point(cafe: Engine) -> None:
    member = join(cafe, "600001")
    chosen = round_up_to(cafe, "600001")
    assert chosen["round_up"] == "children"
    assert chosen["round_up_step"] == "1.00"
    answer = buy(cafe, "600001", qty=3)  # 450.00: 4.50 points
    assert answer["accrued"] == "4.50"
    assert answer["charity"] == {"charity": "children", "points": "0.50"}
    assert answer["balance"]["available"] == "4.00"
    assert available(cafe, "600001") == "4.00"
    assert lots_left(cafe, member) == 400  # the round-up came off the purchase's own lot
    assert charity_balance(cafe, "children") == 50
    assert _round_ups(cafe) == [(int(answer["purchase_id"]), 50)]
    with cafe.connect() as connection:
        moved = connection.execute(
            select(transfers.c.purchase_id, transfers.c.amount)
            .where(transfers.c.reason == "charity.round_up")
        ).all()  # fmt: skip
    assert [tuple(row) for row in moved] == [(int(answer["purchase_id"]), 50)]
    sound(cafe)


def test_a_whole_accrual_or_no_choice_gives_nothing(cafe: Engine) -> None:
    join(cafe, "600002")
    round_up_to(cafe, "600002")
    whole = buy(cafe, "600002", qty=2)  # 3.00 points
    assert "charity" not in whole
    assert whole["balance"]["available"] == "3.00"
    stop(cafe, "zerno", "card:600002", now=NOW)
    after = buy(cafe, "600002", qty=1)  # 1.50 points, no charity any more
    assert "charity" not in after
    assert available(cafe, "600002") == "4.50"
    assert _round_ups(cafe) == []
    sound(cafe)


def test_a_hold_rounds_up_at_its_confirm_and_a_cancelled_one_gives_nothing(
    cafe: Engine,
) -> None:
    join(cafe, "600003")
    round_up_to(cafe, "600003")
    held = buy(cafe, "600003", qty=1, hold=True)
    assert held["charity"] == {"charity": "children", "points": "0.50", "status": "on_confirm"}
    assert _round_ups(cafe) == []
    assert charity_balance(cafe, "children") == 0
    confirmed = settle(cafe, held, "confirm")
    assert confirmed["charity"] == {"charity": "children", "points": "0.50"}
    assert available(cafe, "600003") == "1.00"
    assert _round_ups(cafe) == [(int(held["purchase_id"]), 50)]
    assert settle(cafe, held, "confirm") == confirmed  # a repeat gives nothing more
    cancelled_one = buy(cafe, "600003", qty=1, hold=True)
    cancelled = settle(cafe, cancelled_one, "cancel")
    assert "charity" not in cancelled
    assert charity_balance(cafe, "children") == 50
    assert _round_ups(cafe) == [(int(held["purchase_id"]), 50)]
    sound(cafe)


def test_a_refund_takes_the_points_back_whole_and_the_round_up_stands(cafe: Engine) -> None:
    member = join(cafe, "600004", points="10")
    round_up_to(cafe, "600004")
    bought = buy(cafe, "600004", qty=3)  # 4.50 points: 4.00 kept, 0.50 given
    assert available(cafe, "600004") == "14.00"
    back = refund(cafe, bought)
    assert back["accrued_back"] == "4.50"
    assert available(cafe, "600004") == "9.50"  # the 0.50 given came from the member
    assert lots_left(cafe, member) == 950
    assert charity_balance(cafe, "children") == 50
    assert _round_ups(cafe) == [(int(bought["purchase_id"]), 50)]
    sound(cafe)


def test_the_round_up_rides_in_the_purchase_s_own_write(cafe: Engine) -> None:
    """On PostgreSQL a purchase that rounds up sends no more statements than one that
    does not: the choice comes with the load, the transfer and the row with the write."""
    if cafe.dialect.name != "postgresql":
        pytest.skip("one statement: PostgreSQL's data-modifying CTEs")
    join(cafe, "600010")
    join(cafe, "600011")
    round_up_to(cafe, "600010")
    buy(cafe, "600010")  # the charity's account id is learnt once per process
    giving = statements_of(cafe, lambda: buy(cafe, "600010"))
    plain = statements_of(cafe, lambda: buy(cafe, "600011"))
    assert len(giving) == len(plain)
    writes = [sql for sql in giving if "INSERT INTO charity_donations" in sql]
    assert len(writes) == 1
    assert "INSERT INTO purchases" in writes[0]


def test_a_quote_shows_the_round_up_and_gives_nothing(cafe: Engine) -> None:
    join(cafe, "600012")
    round_up_to(cafe, "600012")
    body = {"location": "kiosk", "member": "card:600012", "lines": [{"sku": "TEA-400", "qty": 1}]}
    assert quote_purchase(cafe, "zerno", body, now=NOW)["charity"] == {"charity": "children",
                                                              "points": "0.50"}  # fmt: skip
    assert _round_ups(cafe) == []


def test_a_closed_charity_or_a_waiting_accrual_rounds_nothing_up(cafe: Engine) -> None:
    join(cafe, "600013")
    round_up_to(cafe, "600013")
    closing = {**CHARITY, "charities": [{"code": "children", "name": "Фонд «Дети»",
                                         "until": str((NOW - DAY).date())}]}  # fmt: skip
    apply_program(cafe, program_with_charity(section=closing), actor="test", now=NOW - DAY)
    assert "charity" not in buy(cafe, "600013")
    waiting = program_with_charity()
    waiting["accrual"] = {**waiting["accrual"], "pending_days": 3}
    apply_program(cafe, waiting, actor="test", now=NOW - DAY)
    assert "charity" not in buy(cafe, "600013")
    assert _round_ups(cafe) == []
    sound(cafe)


def test_points_that_fill_a_negative_balance_round_nothing_up(cafe: Engine) -> None:
    """A member whose balance is below zero (a refund took back points already spent):
    the purchase's points fill the hole first, and only what reaches the member — what
    forms a lot — can be given."""
    member = join(cafe, "600014", points="1")
    spent = buy(cafe, "600014", qty=7)  # 10.50 points: 11.50 in all
    make_adjustment(cafe, "zerno", "card:600014", {"points": "-11.50", "reason": "spent"},
                    actor="test", now=NOW)  # fmt: skip
    refund(cafe, spent)  # takes the 10.50 back from nothing
    assert available(cafe, "600014") == "-10.50"
    round_up_to(cafe, "600014")
    filled = buy(cafe, "600014", qty=7)  # 10.50 points, all into the hole: no lot
    assert "charity" not in filled
    assert available(cafe, "600014") == "0.00"
    answer = buy(cafe, "600014", qty=1)  # 1.50 points: 0.50 given
    assert answer["charity"] == {"charity": "children", "points": "0.50"}
    assert lots_left(cafe, member) == 100
    assert _round_ups(cafe) == [(int(answer["purchase_id"]), 50)]
    sound(cafe)


def test_a_refund_after_the_points_were_spent_leaves_a_debt_and_verify_agrees(
    cafe: Engine,
) -> None:
    """With `refunds.spent_points: debt` the points the member no longer has — the ones
    they gave among them — become a debt, as any spent points would."""
    owing = program_with_charity()
    owing["refunds"] = {"spent_points": "debt"}
    apply_program(cafe, owing, actor="test", now=NOW - DAY)
    member = join(cafe, "600015")
    round_up_to(cafe, "600015")
    bought = buy(cafe, "600015", qty=3)  # 4.50: 4.00 kept, 0.50 given
    make_adjustment(cafe, "zerno", "card:600015", {"points": "-4.00", "reason": "spent"},
                    actor="test", now=NOW)  # fmt: skip
    refund(cafe, bought)
    assert available(cafe, "600015") == "0.00"
    with cafe.connect() as connection:
        debt = member_balances(connection, owing_program_id(cafe), int(member))[AccountCode.DEBT]
    assert debt[1] == 450  # the whole accrual: the 4.00 spent and the 0.50 given
    assert charity_balance(cafe, "children") == 50
    sound(cafe)


def owing_program_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(programs.c.id).where(programs.c.code == "zerno"))
                   .scalar_one())  # fmt: skip
