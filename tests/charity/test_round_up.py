"""A member's purchases round up to their charity: the part of the points below a whole
step goes to it in the purchase's own write; a hold rounds up at its confirm; a refund
takes the purchase's points back whole (the round-up stands)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from kopilka.mechanics.charity.handlers import stop
from kopilka.mechanics.charity.tables import charity_donations
from kopilka.platform.tables import transfers
from tests.charity.conftest import (
    NOW,
    available,
    buy,
    charity_balance,
    join,
    lots_left,
    refund,
    round_up_to,
    settle,
    sound,
)


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
    assert chosen["round_up"] == "children" and chosen["round_up_step"] == "1.00"
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
    assert "charity" not in whole and whole["balance"]["available"] == "3.00"
    stop(cafe, "zerno", "card:600002", now=NOW)
    after = buy(cafe, "600002", qty=1)  # 1.50 points, no charity any more
    assert "charity" not in after and available(cafe, "600002") == "4.50"
    assert _round_ups(cafe) == []
    sound(cafe)


def test_a_hold_rounds_up_at_its_confirm_and_a_cancelled_one_gives_nothing(
    cafe: Engine,
) -> None:
    join(cafe, "600003")
    round_up_to(cafe, "600003")
    held = buy(cafe, "600003", qty=1, hold=True)
    assert held["charity"] == {"charity": "children", "points": "0.50", "status": "on_confirm"}
    assert _round_ups(cafe) == [] and charity_balance(cafe, "children") == 0
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
