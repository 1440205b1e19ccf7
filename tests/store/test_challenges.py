"""Challenges and badges in the purchase flow on SQLite and PostgreSQL: visits in a
month, units, spend in a quarter, categories never tried, a weekly streak with a grace
week; a completion's points, badge, coupon and tier given once; refunds that take
progress and a completion back; replays; racing purchases that complete once."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.verify import verify
from kopilka.mechanics.challenges.tables import member_challenges
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members.handlers import read_member, register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once

CHALLENGES = [
    {"code": "three-visits", "name": "3 visits this month", "goal": {"visits": 3},
     "period": "month", "reward": {"points": "200", "badge": "regular"}},
    {"code": "lunches", "name": "5 lunches", "goal": {"units": 5}, "categories": ["lunch"],
     "reward": {"coupon": "free-dessert"}},
    {"code": "big-quarter", "name": "1,000 ₽ in a quarter", "goal": {"spend": "1000.00"},
     "period": "quarter", "reward": {"tier": "vip"}},
    {"code": "explorer", "name": "Try 2 new categories", "goal": {"new_categories": 2},
     "reward": {"badge": "explorer"}},
    {"code": "weekly", "name": "Every week for 3 weeks", "goal": {"weekly_streak": {
        "weeks": 3, "grace_weeks": 1}}, "reward": {"points": "50"}},
]  # fmt: skip
BADGES = [
    {"code": "regular", "name": "Regular"},
    {"code": "explorer", "name": "Explorer", "description": "Tried something new"},
]
DESSERT = {"code": "free-dessert", "kind": "unique", "effect": {"amount": "100.00"}}


def program(**changes: Any) -> dict[str, Any]:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["challenges"] = copy.deepcopy(CHALLENGES)
    document["badges"] = copy.deepcopy(BADGES)
    document.update(changes)
    return document


@pytest.fixture
def cafe(engine: Engine) -> Engine:
    apply_program(engine, program(), actor="test", now=NOW)
    coupons.create_campaign(engine, "zerno", copy.deepcopy(DESSERT), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    return engine


def buy(engine: Engine, receipt_id: str, *lines: tuple[str, int],
        now: datetime = NOW) -> dict[str, Any]:  # fmt: skip
    body = {
        "receipt_id": receipt_id,
        "location": "kiosk",
        "member": "card:100001",
        "at": now.isoformat(),
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
    }
    return process_purchase(engine, "zerno", body, now=now, actor="pos:test").answer


def moved(answer: dict[str, Any], code: str) -> dict[str, Any] | None:
    return next((item for item in answer.get("challenges", []) if item["challenge"] == code),
                None)  # fmt: skip


def standing(engine: Engine, code: str) -> list[tuple[str, int, int]]:
    c = member_challenges.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(c.period, c.progress, c.completions).where(c.challenge == code)
            .order_by(c.period)
        ).all()  # fmt: skip
    return [(row.period, int(row.progress), int(row.completions)) for row in rows]


def test_three_visits_a_month_give_points_and_a_badge_once(cafe: Engine) -> None:
    first = buy(cafe, "V-1", ("TEA-400", 1))
    assert moved(first, "three-visits") == {
        "challenge": "three-visits", "name": "3 visits this month", "goal": "visits",
        "period": "2026-03-01", "progress": 1, "target": 3, "completed": False,
        "reward": {"points": "200.00", "badge": {"code": "regular", "name": "Regular"}},
        "message": "3 visits this month: 1 of 3"}  # fmt: skip
    buy(cafe, "V-2", ("TEA-400", 1))
    third = buy(cafe, "V-3", ("TEA-400", 1))
    done = moved(third, "three-visits")
    assert done is not None
    assert (done["completed"], done["message"]) == (True, "3 visits this month: done (3 of 3)")
    assert buy(cafe, "V-3", ("TEA-400", 1)) == third  # a replay gives nothing more
    fourth = buy(cafe, "V-4", ("TEA-400", 1))
    assert moved(fourth, "three-visits")["completed"] is False  # type: ignore[index]
    assert standing(cafe, "three-visits") == [("2026-03-01", 4, 1)]
    april = buy(cafe, "V-5", ("TEA-400", 1), now=NOW + timedelta(days=31))
    assert moved(april, "three-visits")["period"] == "2026-04-01"  # type: ignore[index]
    member = read_member(cafe, "zerno", "card:100001", now=NOW)
    assert [badge["badge"] for badge in member["challenges"]["badges"]] == ["regular"]
    assert verify(cafe)[1] == []


def test_units_and_a_coupon_reward(cafe: Engine) -> None:
    buy(cafe, "L-1", ("LUNCH-1", 3))
    done = buy(cafe, "L-2", ("LUNCH-1", 2), ("SOUP-1", 1))  # 3 + 3: done at 5
    assert moved(done, "lunches")["completed"] is True  # type: ignore[index]
    (given,) = done["coupons_given"]
    assert (given["campaign"], given["reason"], given["given"]) == (
        "free-dessert",
        "challenge lunches",
        True,
    )


def test_spend_in_a_quarter_raises_the_tier(cafe: Engine) -> None:
    buy(cafe, "S-1", ("LUNCH-1", 1))
    done = buy(cafe, "S-2", ("LUNCH-1", 2))  # 450 + 900 ≥ 1,000
    assert moved(done, "big-quarter")["completed"] is True  # type: ignore[index]
    assert moved(done, "big-quarter")["progress"] == "1350.00"  # type: ignore[index]
    assert done["tier_raised"] == "vip"
    assert read_member(cafe, "zerno", "card:100001", now=NOW)["tier"]["code"] == "vip"


def test_new_categories_count_once_each(cafe: Engine) -> None:
    one = buy(cafe, "C-1", ("TEA-400", 2))  # drinks: new
    assert moved(one, "explorer")["progress"] == 1  # type: ignore[index]
    same = buy(cafe, "C-2", ("TEA-400", 1))  # drinks again: nothing
    assert moved(same, "explorer") is None
    two = buy(cafe, "C-3", ("CRS-1", 1), ("TEA-400", 1))  # bakery: new
    assert moved(two, "explorer")["completed"] is True  # type: ignore[index]
    member = read_member(cafe, "zerno", "card:100001", now=NOW)
    assert {badge["badge"] for badge in member["challenges"]["badges"]} == {"explorer", "regular"}


def test_a_weekly_streak_forgives_one_missed_week(cafe: Engine) -> None:
    week = timedelta(days=7)
    buy(cafe, "W-1", ("TEA-400", 1))
    again = buy(cafe, "W-1b", ("TEA-400", 1))  # the same week counts once
    assert moved(again, "weekly") is None
    buy(cafe, "W-2", ("TEA-400", 1), now=NOW + week)
    done = buy(cafe, "W-3", ("TEA-400", 1), now=NOW + 3 * week)  # one week missed: grace
    assert moved(done, "weekly")["completed"] is True  # type: ignore[index]
    later = buy(cafe, "W-4", ("TEA-400", 1), now=NOW + 6 * week)  # two missed: starts again
    assert moved(later, "weekly")["progress"] == 1  # type: ignore[index]


def test_a_refund_takes_back_the_progress_and_the_completion(cafe: Engine) -> None:
    buy(cafe, "R-1", ("TEA-400", 1))
    buy(cafe, "R-2", ("TEA-400", 1))
    third = buy(cafe, "R-3", ("TEA-400", 1), ("LUNCH-1", 2))
    balance = Decimal(third["balance"]["available"])
    refund, _ = refund_purchase(cafe, "zerno", third["purchase_id"], {"refund_id": "RF-1"},
                                actor="pos:test", now=NOW)  # fmt: skip
    back = {item["challenge"]: item for item in refund["challenges_back"]}
    assert back["three-visits"] == {
        "challenge": "three-visits",
        "period": "2026-03-01",
        "progress": 1,
        "completion": True,
        "points": "200.00",
    }
    assert back["lunches"]["progress"] == 2
    assert standing(cafe, "three-visits") == [("2026-03-01", 2, 0)]
    assert Decimal(refund["balance"]["available"]) == balance - Decimal(refund["accrued_back"])
    member = read_member(cafe, "zerno", "card:100001", now=NOW)
    assert "regular" not in [badge["badge"] for badge in member["challenges"]["badges"]]
    again = buy(cafe, "R-4", ("TEA-400", 1))  # the third visit again: done again
    assert moved(again, "three-visits")["completed"] is True  # type: ignore[index]
    assert verify(cafe)[1] == []


def test_a_partial_refund_takes_back_the_units_it_returns(cafe: Engine) -> None:
    bought = buy(cafe, "P-1", ("LUNCH-1", 4))
    refund, _ = refund_purchase(cafe, "zerno", bought["purchase_id"],
                                {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
                                actor="pos:test", now=NOW)  # fmt: skip
    back = {item["challenge"]: item for item in refund["challenges_back"]}
    assert back["lunches"]["progress"] == 1
    assert "three-visits" not in back  # a visit stays until the last of the receipt
    assert standing(cafe, "lunches") == [("ever", 3, 0)]


def test_racing_purchases_complete_a_challenge_once(cafe: Engine) -> None:
    buy(cafe, "X-1", ("TEA-400", 1))
    buy(cafe, "X-2", ("TEA-400", 1))
    numbers = iter(range(100))
    answers = at_once(lambda: buy(cafe, f"X-race-{next(numbers)}", ("TEA-400", 1)), times=4)
    done = [moved(answer, "three-visits") for answer in answers]
    assert sum(1 for item in done if item and item["completed"]) == 1
    assert standing(cafe, "three-visits") == [("2026-03-01", 6, 1)]


@pytest.mark.parametrize(("change", "message"), [
    ({"badge": "nope"}, "'nope' is not one of the badges"),
    ({"tier": "platinum"}, "'platinum' is not one of the tiers"),
])  # fmt: skip
def test_a_reward_must_name_what_the_program_has(change: dict[str, str], message: str) -> None:
    challenges = [{"code": "x", "goal": {"visits": 1}, "reward": change}]
    with pytest.raises(InvalidInput) as caught:
        parse_program(program(challenges=challenges))
    assert any(message in problem.message for problem in caught.value.problems), caught.value


def test_verify_finds_a_challenge_s_running_state_changed_behind_its_back(cafe: Engine) -> None:
    buy(cafe, "V-1", ("TEA-400", 1))
    assert verify(cafe)[1] == []
    with cafe.begin() as connection:
        connection.execute(update(member_challenges).values(completions=1))
    found = verify(cafe)[1]
    assert {d.check for d in found} == {
        "challenges' running state equals their purchases' progress"
    }


def test_a_held_purchase_counts_at_once_rewards_at_confirm_and_a_cancel_undoes_it(
    cafe: Engine,
) -> None:
    buy(cafe, "H-1", ("LUNCH-1", 1))
    body = {"receipt_id": "H-2", "location": "kiosk", "member": "card:100001", "hold": True,
            "at": NOW.isoformat(), "lines": [{"sku": "LUNCH-1", "qty": 2}]}  # fmt: skip
    held = process_purchase(cafe, "zerno", body, now=NOW, actor="pos:test").answer
    assert moved(held, "big-quarter")["completed"] is True  # type: ignore[index]
    assert "tier_raised" not in held  # the tier waits for the confirm
    confirmed, _ = settle_hold(cafe, "zerno", held["purchase_id"], "confirm", actor="pos:test",
                               now=NOW)  # fmt: skip
    assert confirmed["tier_raised"] == "vip"

    third = process_purchase(cafe, "zerno", {**body, "receipt_id": "H-4",
                                             "lines": [{"sku": "TEA-400", "qty": 1}]},
                             now=NOW, actor="pos:test").answer  # fmt: skip
    assert moved(third, "three-visits")["completed"] is True  # type: ignore[index]
    cancelled, _ = settle_hold(cafe, "zerno", third["purchase_id"], "cancel", actor="pos:test",
                               now=NOW)  # fmt: skip
    back = {item["challenge"]: item for item in cancelled["challenges_back"]}
    assert back["three-visits"] == {
        "challenge": "three-visits",
        "period": "2026-03-01",
        "progress": 1,
        "completion": True,
        "points": "0.00",
    }
    assert standing(cafe, "three-visits") == [("2026-03-01", 2, 0)]
    member = read_member(cafe, "zerno", "card:100001", now=NOW)
    assert member["challenges"]["badges"] == []
    assert verify(cafe)[1] == []


def test_a_partial_refund_under_the_target_revokes_a_coupon_completion(cafe: Engine) -> None:
    done = buy(cafe, "K-1", ("LUNCH-1", 5), ("TEA-400", 1))
    assert moved(done, "lunches")["completed"] is True  # type: ignore[index]
    code = done["coupons_given"][0]["code"]
    refund, _ = refund_purchase(cafe, "zerno", done["purchase_id"],
                                {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
                                actor="pos:test", now=NOW)  # fmt: skip
    assert refund["coupons_revoked"] == [code]
    back = {item["challenge"]: item for item in refund["challenges_back"]}
    assert (back["lunches"]["progress"], back["lunches"]["completion"]) == (1, True)
    assert standing(cafe, "lunches") == [("ever", 4, 0)]
    assert verify(cafe)[1] == []


def test_a_visit_goes_back_with_its_last_qualifying_line(cafe: Engine) -> None:
    document = program(
        challenges=[
            {
                "code": "lunch-visits",
                "goal": {"visits": 3},
                "categories": ["lunch"],
                "reward": {"points": "10"},
            }
        ]
    )
    apply_program(cafe, document, actor="test", now=NOW)
    bought = buy(cafe, "B-1", ("LUNCH-1", 1), ("TEA-400", 1))
    assert moved(bought, "lunch-visits")["progress"] == 1  # type: ignore[index]
    refund, _ = refund_purchase(cafe, "zerno", bought["purchase_id"],
                                {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
                                actor="pos:test", now=NOW)  # fmt: skip
    assert refund["challenges_back"][0]["progress"] == 1  # the lunch gone, the tea is no visit
    assert standing(cafe, "lunch-visits") == [("ever", 0, 0)]
