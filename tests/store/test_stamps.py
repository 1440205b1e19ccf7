"""Stamp cards in the purchase flow on SQLite and PostgreSQL: stamps per unit and per
receipt, a reward at N (points or a personal coupon), the card starting again, several
cards at once, replays, refunds that take stamps and rewards back, and racing purchases
that never give a reward twice."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from kopilka.checkout.purchases import process_purchase, quote_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.mechanics.stamps.tables import member_stamps
from kopilka.members.handlers import read_member, register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once

COFFEE = {"code": "coffee", "name": "Coffee card", "stamps": 6, "per": "unit",
          "categories": ["coffee"], "max_per_receipt": 3,
          "reward": {"points": "100", "note": "a free coffee"}}  # fmt: skip
LUNCH = {"code": "lunch", "name": "Lunch card", "stamps": 3, "per": "receipt",
         "categories": ["lunch"], "min_spend": "400.00",
         "reward": {"coupon": "free-dessert", "note": "a free dessert"}}  # fmt: skip
DESSERT = {"code": "free-dessert", "kind": "unique", "effect": {"amount": "100.00"}}


@pytest.fixture
def cafe(engine: Engine) -> Engine:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["stamp_cards"] = [copy.deepcopy(COFFEE), copy.deepcopy(LUNCH)]
    apply_program(engine, document, actor="test", now=NOW)
    coupons.create_campaign(engine, "zerno", copy.deepcopy(DESSERT), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    register_member(engine, "zerno", {"card": "100002"}, now=NOW)
    return engine


def buy(engine: Engine, receipt_id: str, *lines: tuple[str, int], card: str = "100001"
        ) -> dict[str, Any]:  # fmt: skip
    body = {"receipt_id": receipt_id, "location": "kiosk", "member": f"card:{card}",
            "at": "2026-03-10T11:00:00+03:00",
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}  # fmt: skip
    return process_purchase(engine, "zerno", body, now=NOW, actor="pos:test").answer


def card_of(answer: dict[str, Any], code: str) -> dict[str, Any]:
    return next(card for card in answer["stamps"] if card["card"] == code)


def held(engine: Engine, card: str = "coffee") -> tuple[int, int, int]:
    with engine.connect() as connection:
        row = connection.execute(
            select(member_stamps.c.held, member_stamps.c.earned, member_stamps.c.rewards)
            .where(member_stamps.c.card == card)
        ).one()  # fmt: skip
    return int(row.held), int(row.earned), int(row.rewards)


def test_a_card_fills_gives_its_reward_and_starts_again(cafe: Engine) -> None:
    first = buy(cafe, "S-1", ("CAP-300", 2), ("CRS-1", 1))
    assert card_of(first, "coffee") | {"message": ""} == {
        "card": "coffee",
        "name": "Coffee card",
        "earned": 2,
        "held": 2,
        "of": 6,
        "to_go": 4,
        "rewards": 0,
        "reward": {"note": "a free coffee", "points": "0.00"},
        "message": "",
    }
    assert card_of(first, "coffee")["message"] == "Coffee card: 2 of 6 — 4 more to a free coffee"
    assert buy(cafe, "S-2", ("ESP-60", 5))["stamps"][0]["earned"] == 3  # at most 3 a receipt
    before = buy(cafe, "S-3", ("TEA-400", 1))  # no coffee: no stamp, nothing said
    assert "stamps" not in before
    quoted = quote_purchase(
        cafe,
        "zerno",
        {"member": "card:100001", "location": "kiosk", "lines": [{"sku": "CAP-300", "qty": 1}]},
        now=NOW,
    )
    assert card_of(quoted, "coffee")["rewards"] == 1  # the quote says so, and writes nothing
    assert held(cafe) == (5, 5, 0)

    rewarded = buy(cafe, "S-4", ("CAP-300", 2))
    coffee = card_of(rewarded, "coffee")
    assert (coffee["rewards"], coffee["held"], coffee["reward"]["points"]) == (1, 1, "100.00")
    assert coffee["message"] == "Coffee card: a free coffee given; the card starts again (1 of 6)"
    assert held(cafe) == (1, 7, 1)
    replay = buy(cafe, "S-4", ("CAP-300", 2))  # the same receipt again: the same answer
    assert replay == rewarded
    assert held(cafe) == (1, 7, 1)
    assert verify(cafe)[1] == []

    member = read_member(cafe, "zerno", "card:100001", now=NOW)
    shown = {card["card"]: card for card in member["stamps"]["cards"]}
    assert (shown["coffee"]["held"], shown["coffee"]["rewards"]) == (1, 1)
    assert (shown["lunch"]["held"], shown["lunch"]["to_go"]) == (0, 3)


def test_a_refund_takes_its_stamps_and_the_reward_they_completed_back(cafe: Engine) -> None:
    buy(cafe, "S-1", ("CAP-300", 3))
    buy(cafe, "S-2", ("CAP-300", 2))
    rewarded = buy(cafe, "S-3", ("CAP-300", 2), ("CRS-1", 1))  # 5 + 2: a reward, 1 held
    balance = Decimal(rewarded["balance"]["available"])
    coffees = Decimal(rewarded["lines"][0]["accrued"])  # what the two coffees earned
    # one coffee back: the card keeps the reward (6 stamps stand), holds 0
    partial, _ = refund_purchase(cafe, "zerno", rewarded["purchase_id"],
                                 {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
                                 actor="pos:test", now=NOW)  # fmt: skip
    assert partial["stamps_back"] == [{"card": "coffee", "stamps": 1, "rewards": 0,
                                       "points": "0.00"}]  # fmt: skip
    assert held(cafe) == (0, 6, 1)
    # the other coffee: the reward goes back with its points, the card holds 5 again
    rest, _ = refund_purchase(cafe, "zerno", rewarded["purchase_id"],
                              {"refund_id": "RF-2", "lines": [{"n": 0, "qty": 1}]},
                              actor="pos:test", now=NOW)  # fmt: skip
    assert rest["stamps_back"] == [{"card": "coffee", "stamps": 1, "rewards": 1,
                                    "points": "100.00"}]  # fmt: skip
    assert held(cafe) == (5, 5, 0)
    # the refunds take back what the coffees earned, and the reward's 100 points
    back = Decimal(partial["accrued_back"]) + Decimal(rest["accrued_back"])
    assert back == coffees + 100
    assert Decimal(rest["balance"]["available"]) == balance - back
    again, _ = refund_purchase(cafe, "zerno", rewarded["purchase_id"],
                               {"refund_id": "RF-2", "lines": [{"n": 0, "qty": 1}]},
                               actor="pos:test", now=NOW)  # fmt: skip
    assert again == rest  # a replayed refund takes nothing more
    assert held(cafe) == (5, 5, 0)
    assert verify(cafe)[1] == []


def test_stamps_refunded_after_their_reward_leave_the_card_owing(cafe: Engine) -> None:
    early = buy(cafe, "S-1", ("CAP-300", 3))
    buy(cafe, "S-2", ("CAP-300", 3))  # 6: the reward, the card at 0
    assert held(cafe) == (0, 6, 1)
    refunded, _ = refund_purchase(cafe, "zerno", early["purchase_id"], {"refund_id": "RF-1"},
                                  actor="pos:test", now=NOW)  # fmt: skip
    assert refunded["stamps_back"][0]["rewards"] == 0  # that purchase gave no reward
    assert held(cafe) == (-3, 3, 1)  # the card owes the 3 stamps the reward used
    after = buy(cafe, "S-3", ("CAP-300", 3))
    assert card_of(after, "coffee")["held"] == 0
    assert card_of(after, "coffee")["rewards"] == 0


def test_a_kept_reward_forgives_the_stamps_that_made_it(cafe: Engine) -> None:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["stamp_cards"] = [{**copy.deepcopy(COFFEE), "on_refund": "keep"}]
    apply_program(cafe, document, actor="test", now=NOW)
    early = buy(cafe, "S-1", ("CAP-300", 3))
    buy(cafe, "S-2", ("CAP-300", 3))
    refunded, _ = refund_purchase(cafe, "zerno", early["purchase_id"], {"refund_id": "RF-1"},
                                  actor="pos:test", now=NOW)  # fmt: skip
    assert refunded["stamps_back"][0]["stamps"] == 3
    assert held(cafe) == (0, 3, 1)


def test_a_card_s_coupon_reward_is_personal_and_revoked_by_its_refund(cafe: Engine) -> None:
    buy(cafe, "L-1", ("LUNCH-1", 1))
    small = buy(cafe, "L-2", ("SOUP-1", 1))  # 220 < 400: no stamp
    assert "stamps" not in small
    buy(cafe, "L-3", ("LUNCH-1", 1))
    third = buy(cafe, "L-4", ("LUNCH-1", 1))
    assert card_of(third, "lunch")["rewards"] == 1
    (given,) = third["coupons_given"]
    assert (given["campaign"], given["given"], given["reason"]) == (
        "free-dessert",
        True,
        "stamp card lunch",
    )
    code = given["code"]
    coupon = coupons.read_coupon(cafe, "zerno", code, now=NOW)
    assert (coupon["status"], coupon["owner"], coupon["given_by"]) == (
        "issued",
        third["member"],
        "stamps",
    )
    refunded, _ = refund_purchase(cafe, "zerno", third["purchase_id"], {"refund_id": "RF-1"},
                                  actor="pos:test", now=NOW)  # fmt: skip
    assert refunded["coupons_revoked"] == [code]
    assert coupons.read_coupon(cafe, "zerno", code, now=NOW)["status"] == "revoked"
    assert held(cafe, "lunch") == (2, 2, 0)  # the reward revoked: its stamps back on the card
    assert refunded["stamps_back"] == [{"card": "lunch", "stamps": 1, "rewards": 1,
                                        "points": "0.00"}]  # fmt: skip
    assert verify(cafe)[1] == []


def test_two_racing_purchases_give_the_reward_once(cafe: Engine) -> None:
    buy(cafe, "R-0", ("CAP-300", 3))
    buy(cafe, "R-1", ("CAP-300", 2))  # 5 of 6
    numbers = iter(range(100))
    answers = at_once(lambda: buy(cafe, f"R-race-{next(numbers)}", ("CAP-300", 1)), times=4)
    assert sum(card_of(answer, "coffee")["rewards"] for answer in answers) == 1
    assert held(cafe) == (3, 9, 1)


def test_verify_finds_a_card_s_running_state_changed_behind_its_back(cafe: Engine) -> None:
    buy(cafe, "V-1", ("CAP-300", 2))
    assert verify(cafe)[1] == []
    with cafe.begin() as connection:
        connection.execute(update(member_stamps).values(earned=member_stamps.c.earned + 1))
    found = verify(cafe)[1]
    assert [d.check for d in found] == ["stamp cards' running state equals their purchases' stamps"]
    assert "card coffee: kept 3 stamps/0 rewards, purchases 2/0" in found[0].detail


def test_a_held_purchase_stamps_at_once_pays_at_confirm_and_a_cancel_undoes_it(
    cafe: Engine,
) -> None:
    buy(cafe, "H-0", ("CAP-300", 3))
    buy(cafe, "H-1", ("CAP-300", 2))  # 5 of 6
    body = {"receipt_id": "H-2", "location": "kiosk", "member": "card:100001", "hold": True,
            "lines": [{"sku": "CAP-300", "qty": 1}]}  # fmt: skip
    held_one = process_purchase(cafe, "zerno", body, now=NOW, actor="pos:test").answer
    assert card_of(held_one, "coffee")["rewards"] == 1  # counted at once: no stamp twice
    assert held(cafe) == (0, 6, 1)
    before = Decimal(held_one["balance"]["available"])
    confirmed, _ = settle_hold(cafe, "zerno", held_one["purchase_id"], "confirm",
                               actor="pos:test", now=NOW)  # fmt: skip
    reward = Decimal(confirmed["balance"]["available"]) - before
    assert reward >= 100  # the reward's 100 points, with the purchase's own

    standing = buy(cafe, "H-3", ("CAP-300", 3))["balance"]["available"]
    again = {**body, "receipt_id": "H-4", "lines": [{"sku": "CAP-300", "qty": 3}]}
    second = process_purchase(cafe, "zerno", again, now=NOW, actor="pos:test").answer
    assert card_of(second, "coffee")["rewards"] == 1
    assert held(cafe) == (0, 12, 2)
    cancelled, _ = settle_hold(cafe, "zerno", second["purchase_id"], "cancel",
                               actor="pos:test", now=NOW)  # fmt: skip
    assert cancelled["stamps_back"] == [{"card": "coffee", "stamps": 3, "rewards": 1,
                                         "points": "0.00"}]  # fmt: skip
    assert held(cafe) == (3, 9, 1)  # as before the held purchase
    assert cancelled["balance"]["available"] == standing  # no reward points were given
    assert verify(cafe)[1] == []


def test_a_used_coupon_reward_stands_and_the_card_owes_the_stamps(cafe: Engine) -> None:
    for n in range(3):
        third = buy(cafe, f"U-{n}", ("LUNCH-1", 1))
    code = third["coupons_given"][0]["code"]
    used = process_purchase(cafe, "zerno", {"receipt_id": "U-use", "location": "kiosk",
                                            "member": "card:100001", "coupons": [code],
                                            "lines": [{"sku": "TEA-400", "qty": 1}]},
                            now=NOW, actor="pos:test").answer  # fmt: skip
    assert used["coupons"][0]["applied"] is True
    refunded, _ = refund_purchase(cafe, "zerno", third["purchase_id"], {"refund_id": "RF-1"},
                                  actor="pos:test", now=NOW)  # fmt: skip
    assert "coupons_revoked" not in refunded
    assert held(cafe, "lunch") == (-1, 2, 1)  # used: the reward stands, the card owes


def test_a_cancelled_hold_whose_coupon_was_used_keeps_the_reward(cafe: Engine) -> None:
    buy(cafe, "C-1", ("LUNCH-1", 1))
    buy(cafe, "C-2", ("LUNCH-1", 1))
    body = {"receipt_id": "C-3", "location": "kiosk", "member": "card:100001", "hold": True,
            "lines": [{"sku": "LUNCH-1", "qty": 1}]}  # fmt: skip
    hold = process_purchase(cafe, "zerno", body, now=NOW, actor="pos:test").answer
    code = hold["coupons_given"][0]["code"]
    process_purchase(cafe, "zerno", {"receipt_id": "C-use", "location": "kiosk",
                                     "member": "card:100001", "coupons": [code],
                                     "lines": [{"sku": "TEA-400", "qty": 1}]},
                     now=NOW, actor="pos:test")  # fmt: skip
    settle_hold(cafe, "zerno", hold["purchase_id"], "cancel", actor="pos:test", now=NOW)
    assert held(cafe, "lunch") == (-1, 2, 1)  # not filled again from 2: it owes the one
