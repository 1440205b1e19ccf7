"""Coupons stored: campaigns, batches, issue and gift, export, and a coupon through a
purchase — load, redeem, give back — on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
import os
import random
import time
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import (
    Conflict,
    CouponInvalid,
    Duplicate,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
)
from kopilka.mechanics.coupons import codes as coupon_codes
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.mechanics.coupons.model import CouponCheck, check_coupon
from kopilka.mechanics.coupons.tables import coupon_redemptions
from kopilka.mechanics.coupons.tables import coupons as coupon_rows
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program, load_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once
from tests.store.test_purchases import receipt

UNIQUE = {"code": "spring", "kind": "unique", "effect": {"percent": 10},
          "valid": {"from": "2026-03-01", "until": "2026-03-31"}}  # fmt: skip
PUBLIC = {"code": "open", "kind": "public", "public_code": "Spring10",
          "limits": {"per_member": 2, "total": 3}, "effect": {"amount": "50.00"}}  # fmt: skip


def create(engine: Engine, document: dict[str, Any], program: str = "zerno") -> dict[str, Any]:
    return coupons.create_campaign(engine, program, copy.deepcopy(document), actor="test",
                                   now=NOW)[0]  # fmt: skip


def codes_of(engine: Engine, campaign: str, count: int, seed: int = 1) -> list[str]:
    coupons.create_batch(engine, "zerno", campaign, {"count": count}, actor="test", now=NOW,
                         rng=random.Random(seed))  # fmt: skip
    page = coupons.code_page(engine, "zerno", campaign, limit=count)
    return [item["code"] for item in page["items"]]


def member(engine: Engine, card: str) -> int:
    return int(register_member(engine, "zerno", {"card": card}, now=NOW)["id"])


def purchase(engine: Engine, receipt_id: str, card: str | None = None) -> int:
    body = receipt(receipt_id=receipt_id, **({"member": f"card:{card}"} if card else {}))
    answer = process_purchase(engine, "zerno", body, now=NOW, actor="test").answer
    return int(answer["purchase_id"])


def checked(connection: Any, code: str, member_id: int | None) -> CouponCheck:
    program = load_program(connection, "zerno")
    state = coupons.load_coupons(connection, program.program_id, [code], member_id)[0]
    return check_coupon(state, code, program=program.calculator.program,
                        lines=[("TEA-400", "drinks", 15000), ("CRS-1", "bakery", 14000)],
                        location="kiosk", member_id=member_id, tier=None,
                        segments=frozenset(), at=NOW)  # fmt: skip


def redeem(engine: Engine, code: str, member_id: int | None, purchase_id: int,
           discount: int = 2900) -> CouponCheck:  # fmt: skip
    """Check and redeem in one transaction, as a purchase does; the check."""
    with engine.begin() as connection:
        result = checked(connection, code, member_id)
        if result.reason is None:
            program_id = load_program(connection, "zerno").program_id
            coupons.redeem_coupons(connection, program_id, purchase_id, member_id,
                                   [(result, discount, 0)], NOW)  # fmt: skip
        return result


# — campaigns —


def test_a_campaign_is_created_read_and_listed(zerno_engine):
    answer = create(zerno_engine, UNIQUE)
    assert answer["status"] == "active"
    assert answer["limits"]["per_code"] == 1
    assert answer["valid"]["until"] == "2026-04-01T00:00:00+03:00"
    assert answer["codes"] == {"generated": 0, "issued": 0, "used": 0, "redeemed": 0}
    assert coupons.read_campaign_of(zerno_engine, "zerno", "spring", now=NOW) == answer
    listed = coupons.list_campaigns(zerno_engine, "zerno", now=NOW)["items"]
    assert [item["code"] for item in listed] == ["spring"]


def test_a_campaign_that_names_what_the_program_lacks_is_refused_by_name(zerno_engine):
    document = {**UNIQUE, "conditions": {"categories": ["shoes"]}, "effect": {"free_sku": "X"}}
    with pytest.raises(InvalidInput) as error:
        create(zerno_engine, document)
    assert [str(p) for p in error.value.problems] == [
        "conditions.categories: 'shoes' is not a category of the program",
        "effect.free_sku: 'X' is not a product of the program",
    ]


def test_a_taken_campaign_or_public_code_is_a_duplicate(zerno_engine):
    create(zerno_engine, PUBLIC)
    with pytest.raises(Duplicate):
        create(zerno_engine, PUBLIC)
    with pytest.raises(Duplicate):
        create(zerno_engine, {**PUBLIC, "code": "other", "public_code": "SPRING10"})


def test_a_campaign_is_paused_resumed_and_extended(zerno_engine):
    create(zerno_engine, UNIQUE)
    paused = coupons.update_campaign(zerno_engine, "zerno", "spring", {"paused": True}, now=NOW)
    assert paused["status"] == "paused"
    extended = coupons.update_campaign(zerno_engine, "zerno", "spring",
                                       {"paused": False, "valid": {"until": "2026-04-30"}},
                                       now=NOW)  # fmt: skip
    assert extended["status"] == "active"
    assert extended["valid"] == {"from": "2026-03-01T00:00:00+03:00",
                                 "until": "2026-05-01T00:00:00+03:00"}  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        coupons.update_campaign(zerno_engine, "zerno", "spring", {"kind": "public"}, now=NOW)
    assert str(error.value) == "kind: can't be changed: create another campaign"
    with pytest.raises(NotFound):
        coupons.update_campaign(zerno_engine, "zerno", "nope", {"paused": True}, now=NOW)


# — codes —


def test_a_batch_of_ten_thousand_codes_is_unique_well_formed_and_fast(zerno_engine):
    create(zerno_engine, UNIQUE)
    started = time.perf_counter()
    batch, created = coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 10_000},
                                          actor="test", now=NOW)  # fmt: skip
    elapsed = time.perf_counter() - started
    assert (batch["count"], created) == (10_000, True)
    with zerno_engine.connect() as connection:
        stored = connection.execute(select(coupon_rows.c.code)).scalars().all()
    assert len(stored) == len(set(stored)) == 10_000
    assert all(coupon_codes.is_well_formed(code) for code in stored)
    assert elapsed < 5, f"10,000 codes took {elapsed:.1f} s"
    answer = coupons.read_campaign_of(zerno_engine, "zerno", "spring", now=NOW)
    assert answer["codes"]["generated"] == 10_000
    batches = coupons.list_batches(zerno_engine, "zerno", "spring")["items"]
    assert [b["count"] for b in batches] == [10_000]


def test_a_code_the_program_has_is_drawn_again(zerno_engine):
    create(zerno_engine, UNIQUE)
    first = codes_of(zerno_engine, "spring", 50, seed=5)
    # the same seed draws the same 50 first: each collides, and is drawn again
    coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 50}, actor="test", now=NOW,
                         rng=random.Random(5))  # fmt: skip
    everything = coupons.code_page(zerno_engine, "zerno", "spring", limit=1000)["items"]
    assert len({item["code"] for item in everything}) == 100
    assert set(first) < {item["code"] for item in everything}


def test_a_batch_is_refused_for_a_public_campaign_and_a_count_out_of_range(zerno_engine):
    create(zerno_engine, PUBLIC)
    with pytest.raises(Conflict):
        coupons.create_batch(zerno_engine, "zerno", "open", {"count": 1}, actor="t", now=NOW)
    for count in (0, 1_000_001, "many"):
        with pytest.raises(InvalidInput):
            coupons.create_batch(zerno_engine, "zerno", "open", {"count": count}, actor="t",
                                 now=NOW)  # fmt: skip


def test_a_batch_with_an_idempotency_key_is_made_once(zerno_engine):
    create(zerno_engine, UNIQUE)
    first = coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 5}, actor="t",
                                 now=NOW, idempotency_key="b-1")  # fmt: skip
    again = coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 5}, actor="t",
                                 now=NOW, idempotency_key="b-1")  # fmt: skip
    assert (again[0], again[1]) == (first[0], False)
    with pytest.raises(IdempotencyConflict):
        coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 6}, actor="t",
                             now=NOW, idempotency_key="b-1")  # fmt: skip
    assert coupons.read_campaign_of(zerno_engine, "zerno", "spring", now=NOW)["codes"][
        "generated"] == 5  # fmt: skip


@pytest.mark.skipif(not os.environ.get("KOPILKA_BIG_TESTS"),
                    reason="a million codes: KOPILKA_BIG_TESTS=1")  # fmt: skip
def test_a_batch_of_a_million_codes_is_unique(zerno_engine):
    create(zerno_engine, UNIQUE)
    coupons.create_batch(zerno_engine, "zerno", "spring", {"count": 1_000_000}, actor="t",
                         now=NOW)  # fmt: skip
    with zerno_engine.connect() as connection:
        count, distinct = connection.execute(
            select(func.count(), func.count(coupon_rows.c.code.distinct()))
        ).one()  # fmt: skip
    assert count == distinct == 1_000_000


# — issue, gift, export —


def test_a_coupon_is_issued_gifted_and_exported(zerno_engine):
    create(zerno_engine, UNIQUE)
    code, other = codes_of(zerno_engine, "spring", 3)[:2]
    anna, boris = member(zerno_engine, "100001"), member(zerno_engine, "100002")
    typed = code.lower().replace("-", " ")  # what people type is read as the code
    issued, is_new = coupons.issue_coupon(zerno_engine, "zerno", typed,
                                          {"member": "card:100001", "channel": "sms"},
                                          now=NOW)  # fmt: skip
    assert (issued["owner"], issued["channel"], issued["status"], is_new) == (
        str(anna), "sms", "issued", True)  # fmt: skip
    resent, is_new = coupons.issue_coupon(
        zerno_engine, "zerno", code, {"member": str(anna), "channel": "email"}, now=NOW
    )
    assert (resent["channel"], is_new) == ("email", False)
    with pytest.raises(Conflict):
        coupons.issue_coupon(zerno_engine, "zerno", code,
                             {"member": "card:100002", "channel": "sms"}, now=NOW)  # fmt: skip
    with pytest.raises(Conflict):  # only the owner gives it
        coupons.gift_coupon(
            zerno_engine,
            "zerno",
            code,
            {"from": "card:100002", "to": "card:100001"},
            actor="t",
            now=NOW,
        )
    gifted, _ = coupons.gift_coupon(zerno_engine, "zerno", code,
                                    {"from": "card:100001", "to": "card:100002"}, actor="t",
                                    now=NOW)  # fmt: skip
    assert gifted["owner"] == str(boris)
    held = coupons.member_coupons(zerno_engine, "zerno", "card:100002", now=NOW)["items"]
    assert [item["code"] for item in held] == [code]
    assert coupons.member_coupons(zerno_engine, "zerno", "card:100001", now=NOW)["items"] == []
    issued_only = coupons.code_page(zerno_engine, "zerno", "spring", status="issued")["items"]
    assert [(i["code"], i["owner"], i["card"], i["channel"]) for i in issued_only] == [
        (code, str(boris), "100002", "email")]  # fmt: skip
    available = coupons.code_page(zerno_engine, "zerno", "spring", status="available")
    assert other in [item["code"] for item in available["items"]]
    text = coupons.csv_text(issued_only, header=True)
    assert text.splitlines()[0] == "code,status,owner,card,channel,issued_at,uses,batch"
    assert text.splitlines()[1].startswith(f"{code},issued,{boris},100002,email,2026-03-10")


def test_a_public_code_is_not_issued_and_unknown_codes_are_not_found(zerno_engine):
    create(zerno_engine, PUBLIC)
    member(zerno_engine, "100001")
    with pytest.raises(Conflict):
        coupons.issue_coupon(zerno_engine, "zerno", "spring10",
                             {"member": "card:100001", "channel": "sms"}, now=NOW)  # fmt: skip
    with pytest.raises(InvalidInput):
        coupons.issue_coupon(zerno_engine, "zerno", "spring10",
                             {"member": "card:100001", "channel": "pigeon"}, now=NOW)  # fmt: skip
    with pytest.raises(NotFound):
        coupons.read_coupon(zerno_engine, "zerno", "NOPE-NOPE", now=NOW)
    assert coupons.read_coupon(zerno_engine, "zerno", " spring10 ", now=NOW)["code"] == "SPRING10"


# — through a purchase —


def test_a_coupon_through_its_life_load_redeem_give_back(zerno_engine):
    create(zerno_engine, {**UNIQUE, "limits": {"per_member": 1, "budget": "100.00"}})
    code = codes_of(zerno_engine, "spring", 2)[0]
    anna = member(zerno_engine, "100001")
    bought = purchase(zerno_engine, "R-1", "100001")
    assert redeem(zerno_engine, code.lower(), anna, bought).reason is None
    with zerno_engine.connect() as connection:
        again = checked(connection, code, anna)
    assert (again.reason, again.detail) == ("used", "the coupon was used once; it allows once")
    campaign = coupons.read_campaign_of(zerno_engine, "zerno", "spring", now=NOW)
    assert campaign["redemptions"] == {"count": 1, "discount": "29.00", "points": "0.00"}
    assert campaign["codes"]["used"] == 1
    with zerno_engine.begin() as connection:
        program_id = load_program(connection, "zerno").program_id
        assert coupons.give_back_coupons(connection, program_id, bought, NOW) == [code]
        assert coupons.give_back_coupons(connection, program_id, bought, NOW) == []
    campaign = coupons.read_campaign_of(zerno_engine, "zerno", "spring", now=NOW)
    assert campaign["redemptions"] == {"count": 0, "discount": "0.00", "points": "0.00"}
    with zerno_engine.connect() as connection:
        back = checked(connection, code, anna)
        rows = connection.execute(select(coupon_redemptions.c.returned_at)).scalars().all()
    assert back.reason is None  # usable again, and the member's one use is free again
    assert rows == [NOW]  # the redemption stays, marked returned


def test_per_member_total_and_budget_limits_hold_in_redemption(zerno_engine):
    create(zerno_engine, PUBLIC)  # per member 2, total 3
    anna, boris = member(zerno_engine, "100001"), member(zerno_engine, "100002")
    for n in (1, 2):
        assert (
            redeem(zerno_engine, "spring10", anna, purchase(zerno_engine, f"A-{n}")).reason is None
        )
    third = redeem(zerno_engine, "SPRING10", anna, purchase(zerno_engine, "A-3"))
    assert third.reason == "limit_reached"
    assert redeem(zerno_engine, "Spring10", boris, purchase(zerno_engine, "B-1")).reason is None
    assert redeem(zerno_engine, "Spring10", boris, purchase(zerno_engine, "B-2")).reason == (
        "limit_reached")  # fmt: skip
    budget = {**UNIQUE, "code": "b", "limits": {"budget": "50.00"}}
    create(zerno_engine, budget)
    first, second = codes_of(zerno_engine, "b", 2, seed=9)
    assert redeem(zerno_engine, first, anna, purchase(zerno_engine, "C-1"), 4000).reason is None
    # 10.00 of the budget is left: a redemption of 29.00 is refused when it is written
    with pytest.raises(CouponInvalid) as error:
        redeem(zerno_engine, second, anna, purchase(zerno_engine, "C-2"), 2900)
    assert (error.value.reason, error.value.coupon) == ("limit_reached", second)


def test_a_coupon_gifted_between_check_and_redemption_is_not_taken(zerno_engine):
    create(zerno_engine, UNIQUE)
    code = codes_of(zerno_engine, "spring", 1)[0]
    anna, _boris = member(zerno_engine, "100001"), member(zerno_engine, "100002")
    coupons.issue_coupon(zerno_engine, "zerno", code, {"member": "card:100001", "channel": "pos"},
                         now=NOW)  # fmt: skip
    bought = purchase(zerno_engine, "R-1")
    with zerno_engine.connect() as connection:
        seen = checked(connection, code, anna)
    assert seen.reason is None
    coupons.gift_coupon(zerno_engine, "zerno", code, {"from": str(anna), "to": "card:100002"},
                        actor="t", now=NOW)  # fmt: skip
    with zerno_engine.begin() as connection:
        program_id = load_program(connection, "zerno").program_id
        with pytest.raises(CouponInvalid) as error:
            coupons.redeem_coupons(connection, program_id, bought, anna, [(seen, 100, 0)], NOW)
    assert error.value.reason == "not_yours"


def test_twenty_concurrent_purchases_with_one_single_use_code_one_wins(zerno_engine):
    create(zerno_engine, UNIQUE)
    code = codes_of(zerno_engine, "spring", 1)[0]
    anna = member(zerno_engine, "100001")
    purchases = iter([purchase(zerno_engine, f"R-{n}") for n in range(20)])

    def attempt() -> str:
        try:
            result = redeem(zerno_engine, code, anna, next(purchases))
        except CouponInvalid as error:
            return f"lost at redemption: {error.reason}"
        return "won" if result.reason is None else f"lost at the check: {result.reason}"

    outcomes = at_once(attempt, times=20)
    assert outcomes.count("won") == 1, outcomes
    assert all(outcome.endswith("used") for outcome in outcomes if outcome != "won")
    with zerno_engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(coupon_redemptions)).scalar() == 1
        )
        assert connection.execute(select(coupon_rows.c.uses)).scalar() == 1


def test_another_programs_code_is_not_found(zerno_engine):
    other: Any = copy.deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))
    other["code"] = "other"
    apply_program(zerno_engine, other, actor="test", now=NOW)
    create(zerno_engine, PUBLIC, program="other")
    with zerno_engine.connect() as connection:
        program_id = load_program(connection, "zerno").program_id
        assert coupons.load_coupons(connection, program_id, ["SPRING10"], None) == [None]
    with pytest.raises(NotFound):
        coupons.read_coupon(zerno_engine, "zerno", "SPRING10", now=NOW)
    assert coupons.read_coupon(zerno_engine, "other", "SPRING10", now=NOW)["campaign"] == "open"
