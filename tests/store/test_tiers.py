"""Tiers on SQLite and PostgreSQL: each threshold kind, windows, upgrades right after the
purchase, refunds taking back what they counted, reviews with grace, tiers set by hand,
and reviews that apply each change once however many workers run them."""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from kopilka.checkout.purchases import process_purchase, quote_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import InvalidInput
from kopilka.ledger.verify import verify
from kopilka.mechanics.tiers.handlers import review_tiers, set_tier, tier_history_of
from kopilka.members.handlers import read_member, register_member
from kopilka.platform.migrate import downgrade, upgrade
from kopilka.platform.tables import accounts, member_tiers, purchases, refunds, tier_history
from kopilka.programs.handlers import apply_program
from tests.store.conftest import at_once, statements_of

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday; 12:00 in Moscow
DAY = timedelta(days=1)

PROGRAM: dict[str, Any] = {
    "code": "kolos",
    "name": "Пекарни «Колос»",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "partners": [{"code": "kolos", "locations": [{"code": "arbat", "name": "Арбат"}]}],
    "catalog": {
        "categories": [
            {"code": "bread", "name": "Хлеб"},
            {"code": "rye", "name": "Ржаной", "parent": "bread"},
            {"code": "cakes", "name": "Торты"},
        ],
        "products": [
            {"sku": "BORODINSKY", "name": "Бородинский", "category": "rye", "price": "100.00"},
            {"sku": "NAPOLEON", "name": "Наполеон", "category": "cakes", "price": "1000.00"},
        ],
    },
    "tiers": {
        "window": {"days": 365},
        "review": "month",
        "grace_days": 0,
        "levels": [
            {"code": "base", "name": "Базовый"},
            {"code": "silver", "name": "Серебро", "qualify": {"spend": "1000.00"}},
            {
                "code": "gold",
                "name": "Золото",
                "qualify": {"spend": "3000.00", "purchases": 4},
                "privileges": ["vip-service", "priority-line"],
            },
        ],
    },
    "rules": [
        {
            "code": "silver-3",
            "kind": "client",
            "when": {"tiers": ["silver"]},
            "then": {"percent": 3},
        },
        {"code": "gold-5", "kind": "client", "when": {"tiers": ["gold"]}, "then": {"percent": 5}},
    ],
}


def program(engine: Engine, **tiers: Any) -> Engine:
    """The test program with `tiers` changes (`levels` replaces the levels)."""
    document = copy.deepcopy(PROGRAM)
    document["tiers"].update(tiers)
    codes = {level["code"] for level in document["tiers"]["levels"]}
    document["rules"] = [rule for rule in document["rules"] if set(rule["when"]["tiers"]) <= codes]
    apply_program(engine, document, actor="test", now=T0)
    return engine


def member(engine: Engine, card: str = "100001", at: datetime = T0) -> str:
    register_member(engine, "kolos", {"card": card}, now=at)
    return f"card:{card}"


_receipts = iter(range(1, 1_000_000))


def buy(
    engine: Engine, who: str, amount: str = "", *, at: datetime, lines: Any = None,
    hold: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A purchase of `amount` (one line of NAPOLEON at that price) or of `lines`."""
    lines = lines or [{"sku": "NAPOLEON", "qty": 1, "price": amount}]
    body = {"receipt_id": f"R-{next(_receipts)}", "location": "arbat", "member": who,
            "lines": lines, "hold": hold}  # fmt: skip
    return process_purchase(engine, "kolos", body, now=at, actor="pos").answer


def refund(engine: Engine, purchase: dict[str, Any], at: datetime, lines: Any = None) -> None:
    body: dict[str, Any] = {"refund_id": f"RF-{next(_receipts)}"}
    if lines is not None:
        body["lines"] = lines
    refund_purchase(engine, "kolos", purchase["purchase_id"], body, actor="pos", now=at)


def code(engine: Engine, who: str, at: datetime = T0) -> str:
    return str(read_member(engine, "kolos", who, now=at)["tier"]["code"])


def history(engine: Engine, who: str) -> list[tuple[str | None, str]]:
    items = tier_history_of(engine, "kolos", who)["items"]
    return [(item["from"], item["to"]) for item in reversed(items)]


# — upgrades and what counts —


def test_a_purchase_that_qualifies_upgrades_at_once_and_is_itself_computed_at_the_old_tier(
    engine: Engine,
) -> None:
    program(engine)
    anna = member(engine)
    assert buy(engine, anna, "600.00", at=T0)["accrued"] == "6.00"
    assert code(engine, anna) == "base"
    qualifying = buy(engine, anna, "500.00", at=T0 + DAY)
    assert qualifying["accrued"] == "5.00"  # 1 %: still base when it was computed
    assert code(engine, anna, T0 + DAY) == "silver"
    assert buy(engine, anna, "100.00", at=T0 + 2 * DAY)["accrued"] == "3.00"  # silver-3
    quoted = quote_purchase(engine, "kolos", {"member": anna, "location": "arbat",
                            "lines": [{"sku": "NAPOLEON", "qty": 1, "price": "100.00"}]},
                            now=T0 + 2 * DAY)  # fmt: skip
    assert quoted["accrued"] == "3.00"
    [change] = tier_history_of(engine, "kolos", anna)["items"]
    assert (change["from"], change["to"], change["manual"]) == (None, "silver", False)
    assert change["purchase_id"] == qualifying["purchase_id"]
    assert change["reason"] == f"qualifies (spend 1100.00) after purchase {change['purchase_id']}"
    assert verify(engine)[1] == []


def test_every_threshold_of_a_level_must_hold_and_the_highest_level_held_wins(
    engine: Engine,
) -> None:
    program(engine)
    anna = member(engine)
    buy(engine, anna, "3500.00", at=T0)  # spend enough for gold, one purchase of the four
    assert code(engine, anna) == "silver"
    document = read_member(engine, "kolos", anna, now=T0)
    assert document["next_tier"] == {"code": "gold", "name": "Золото",
                                     "missing": {"purchases": 3}}  # fmt: skip
    assert document["privileges"] == []
    for day in (1, 2, 3):
        buy(engine, anna, "10.00", at=T0 + day * DAY)
    assert code(engine, anna, T0 + 3 * DAY) == "gold"
    document = read_member(engine, "kolos", anna, now=T0 + 3 * DAY)
    assert (document["next_tier"], document["privileges"]) == (None, ["priority-line",
                                                                      "vip-service"])  # fmt: skip
    assert history(engine, anna) == [(None, "silver"), ("silver", "gold")]


def test_the_next_tier_says_what_is_missing(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    buy(engine, anna, "660.00", at=T0)
    document = read_member(engine, "kolos", anna, now=T0)
    assert document["tier"] == {"code": "base", "name": "Базовый", "since": T0.isoformat(),
                                "until": None, "manual": False, "downgrade_at": None}  # fmt: skip
    assert document["next_tier"] == {"code": "silver", "name": "Серебро",
                                     "missing": {"spend": "340.00"}}  # fmt: skip


def test_a_purchase_count_threshold(engine: Engine) -> None:
    program(engine, levels=[{"code": "base"}, {"code": "regular", "qualify": {"purchases": 3}}])
    anna = member(engine)
    buy(engine, anna, "1.00", at=T0)
    buy(engine, anna, "1.00", at=T0 + DAY)
    assert code(engine, anna, T0 + DAY) == "base"
    buy(engine, anna, "1.00", at=T0 + 2 * DAY)
    assert code(engine, anna, T0 + 2 * DAY) == "regular"


def test_a_tenure_threshold_is_met_at_the_first_purchase_after_it(engine: Engine) -> None:
    program(engine, levels=[{"code": "base"},
                            {"code": "loyal", "qualify": {"tenure_days": 30}}])  # fmt: skip
    anna = member(engine)
    buy(engine, anna, "1.00", at=T0 + 29 * DAY)
    assert read_member(engine, "kolos", anna, now=T0 + 29 * DAY)["next_tier"]["missing"] == {
        "tenure_days": 1
    }
    assert code(engine, anna, T0 + 29 * DAY) == "base"
    buy(engine, anna, "1.00", at=T0 + 30 * DAY)
    assert code(engine, anna, T0 + 30 * DAY) == "loyal"


def test_having_bought_a_category_counts_its_sub_categories_and_not_what_was_returned(
    engine: Engine,
) -> None:
    program(engine, levels=[{"code": "base"},
                            {"code": "baker", "qualify": {"bought": {"categories": ["bread"]}}},
                            {"code": "sweet", "qualify": {"bought": {"skus": ["NAPOLEON"]},
                                                          "spend": "2000.00"}}])  # fmt: skip
    anna, boris = member(engine), member(engine, "100002")
    two_lines = [{"sku": "NAPOLEON", "qty": 1}, {"sku": "BORODINSKY", "qty": 1}]
    bought = buy(engine, anna, at=T0, lines=[{"sku": "NAPOLEON", "qty": 1}])
    assert code(engine, anna) == "base"
    assert read_member(engine, "kolos", anna, now=T0)["next_tier"]["missing"] == {
        "bought": {"categories": ["bread"]}
    }
    buy(engine, anna, at=T0 + DAY, lines=[{"sku": "BORODINSKY", "qty": 1}])  # rye is bread
    assert code(engine, anna, T0 + DAY) == "baker"
    refund(engine, bought, T0 + DAY)
    buy(engine, anna, at=T0 + 2 * DAY, lines=[{"sku": "X-1", "qty": 1, "price": "2000.00"}])
    assert code(engine, anna, T0 + 2 * DAY) == "baker"  # 2,100 spent, but the cake returned
    # a line returned in full is not bought, though the rest of its receipt stays
    mixed = buy(engine, boris, at=T0, lines=two_lines)
    assert code(engine, boris) == "baker"
    refund(engine, mixed, T0, lines=[{"n": 0, "qty": 1}])
    buy(engine, boris, at=T0 + DAY, lines=[{"sku": "X-2", "qty": 1, "price": "2000.00"}])
    assert code(engine, boris, T0 + DAY) == "baker"
    buy(engine, boris, at=T0 + DAY, lines=[{"sku": "NAPOLEON", "qty": 1}])
    assert code(engine, boris, T0 + DAY) == "sweet"


def test_a_rolling_window_forgets_what_is_older_than_its_days(engine: Engine) -> None:
    program(engine, window={"days": 30})
    anna = member(engine)
    buy(engine, anna, "600.00", at=T0)
    buy(engine, anna, "500.00", at=T0 + 31 * DAY)
    assert code(engine, anna, T0 + 31 * DAY) == "base"
    buy(engine, anna, "500.00", at=T0 + 40 * DAY)
    assert code(engine, anna, T0 + 40 * DAY) == "silver"


def test_a_calendar_window_counts_the_current_period_only(engine: Engine) -> None:
    program(engine, window={"period": "month"})
    anna = member(engine)
    march_end = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # 23:00 in Moscow
    buy(engine, anna, "600.00", at=march_end)
    buy(engine, anna, "500.00", at=march_end + timedelta(hours=2))  # 1 April in Moscow
    assert code(engine, anna, march_end + timedelta(hours=2)) == "base"
    buy(engine, anna, "500.00", at=march_end + 10 * DAY)
    assert code(engine, anna, march_end + 10 * DAY) == "silver"


# — refunds take back what they counted —


def test_a_buy_and_return_does_not_climb_tiers(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    big = buy(engine, anna, "900.00", at=T0)
    refund(engine, big, T0 + DAY)
    buy(engine, anna, "200.00", at=T0 + 2 * DAY)
    assert code(engine, anna, T0 + 2 * DAY) == "base"
    assert read_member(engine, "kolos", anna, now=T0 + 2 * DAY)["next_tier"]["missing"] == {
        "spend": "800.00"
    }
    # part of a receipt: the line returned no longer counts, the rest does
    two = buy(engine, anna, at=T0 + 3 * DAY, lines=[
        {"sku": "NAPOLEON", "qty": 2, "price": "200.00", "discount": "50.00"},
        {"sku": "BORODINSKY", "qty": 3}])  # fmt: skip
    refund(engine, two, T0 + 3 * DAY, lines=[{"n": 0, "qty": 1}])
    document = read_member(engine, "kolos", anna, now=T0 + 3 * DAY)
    assert document["next_tier"]["missing"] == {"spend": "325.00"}  # 200 + 350 + 300 − 175
    refund(engine, two, T0 + 3 * DAY)  # the rest of it
    document = read_member(engine, "kolos", anna, now=T0 + 3 * DAY)
    assert document["next_tier"]["missing"] == {"spend": "800.00"}
    assert verify(engine)[1] == []


def test_a_refunded_purchase_is_not_a_purchase(engine: Engine) -> None:
    program(engine, levels=[{"code": "base"}, {"code": "regular", "qualify": {"purchases": 3}}])
    anna = member(engine)
    for day in (0, 1):
        refund(engine, buy(engine, anna, "10.00", at=T0 + day * DAY), T0 + day * DAY)
    partly = buy(engine, anna, at=T0 + 2 * DAY, lines=[{"sku": "BORODINSKY", "qty": 2}])
    refund(engine, partly, T0 + 2 * DAY, lines=[{"n": 0, "qty": 1}])
    assert code(engine, anna, T0 + 2 * DAY) == "base"
    assert read_member(engine, "kolos", anna, now=T0 + 2 * DAY)["next_tier"]["missing"] == {
        "purchases": 2
    }


def test_a_held_purchase_counts_once_confirmed(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    held = buy(engine, anna, "1500.00", at=T0, hold=True)
    assert code(engine, anna) == "base"
    settle_hold(engine, "kolos", held["purchase_id"], "confirm", actor="pos", now=T0)
    assert code(engine, anna) == "silver"
    assert (
        tier_history_of(engine, "kolos", anna)["items"][0]["purchase_id"] == (held["purchase_id"])
    )


# — reviews —


def test_a_refund_lowers_the_tier_only_at_the_next_review(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    bought = buy(engine, anna, "1500.00", at=T0)
    refund(engine, bought, T0 + DAY)
    assert code(engine, anna, T0 + DAY) == "silver"  # no downgrade between reviews
    assert review_tiers(engine, now=T0 + 2 * DAY) == 0  # the March review was held at upgrade
    april = datetime(2026, 3, 31, 21, 0, tzinfo=UTC)  # 1 April, 00:00 in Moscow
    assert review_tiers(engine, now=april - timedelta(seconds=1)) == 0
    assert review_tiers(engine, now=april) == 1
    assert code(engine, anna, april) == "base"
    [_, lowered] = tier_history_of(engine, "kolos", anna)["items"][::-1]
    assert (lowered["from"], lowered["to"], lowered["actor"]) == ("silver", "base", "worker")
    assert lowered["reason"] == "not qualified at the review"


def test_a_grace_period_lowers_only_whoever_still_does_not_qualify_at_its_end(
    engine: Engine,
) -> None:
    program(engine, window={"days": 30}, grace_days=10)
    anna, boris = member(engine), member(engine, "100002")
    buy(engine, anna, "1000.00", at=T0)
    buy(engine, boris, "1000.00", at=T0)
    april, may = (datetime(2026, m, 1, tzinfo=UTC) - timedelta(hours=3) for m in (4, 5))
    assert review_tiers(engine, now=april) == 0  # the window ending at the review has both
    assert review_tiers(engine, now=may) == 0  # neither qualifies: a downgrade pending
    document = read_member(engine, "kolos", anna, now=may)
    assert document["tier"]["code"] == "silver"
    assert document["tier"]["downgrade_at"] == (may + 10 * DAY).isoformat()
    assert review_tiers(engine, now=may + 5 * DAY) == 0
    buy(engine, boris, "1000.00", at=may + 9 * DAY)  # qualifies again within the grace
    assert review_tiers(engine, now=may + 10 * DAY) == 1
    assert (code(engine, anna, may + 10 * DAY), code(engine, boris, may + 10 * DAY)) == (
        "base", "silver")  # fmt: skip
    assert read_member(engine, "kolos", boris, now=may + 10 * DAY)["tier"]["downgrade_at"] is None
    assert tier_history_of(engine, "kolos", anna)["items"][0]["reason"] == (
        "still not qualified when the grace period ended"
    )
    assert review_tiers(engine, now=may + 10 * DAY) == 0


def test_a_review_is_idempotent_for_the_same_moment(engine: Engine) -> None:
    program(engine)
    people = [member(engine, f"10000{n}") for n in range(5)]
    for who in people:
        refund(engine, buy(engine, who, "1000.00", at=T0), T0)
    later = T0 + 60 * DAY
    assert review_tiers(engine, now=later) == 5
    rows = _history_rows(engine)
    assert review_tiers(engine, now=later) == 0
    assert _history_rows(engine) == rows == 10


def test_two_years_of_a_worker_every_third_day_with_a_yearly_window(engine: Engine) -> None:
    program(engine, window={"period": "year"}, review="year", grace_days=31)
    anna = member(engine)
    buy(engine, anna, "1200.00", at=T0)  # silver: 2026's spend keeps it through 2027
    changes = {}
    for run in range(1, 2 * 365 // 3):
        moment = T0 + 3 * run * DAY
        if review_tiers(engine, now=moment):
            changes[moment] = code(engine, anna, moment)
    lowered_at = datetime(2028, 2, 1, tzinfo=UTC) - timedelta(hours=3)  # 2028 review + 31 d
    [(moment, lowered)] = changes.items()
    assert lowered == "base"
    assert lowered_at <= moment < lowered_at + 3 * DAY
    assert history(engine, anna) == [(None, "silver"), ("silver", "base")]
    assert tier_history_of(engine, "kolos", anna)["items"][0]["reason"] == (
        "still not qualified when the grace period ended"
    )


def test_a_calendar_window_review_looks_at_the_period_just_ended(engine: Engine) -> None:
    program(engine, window={"period": "year"}, review="year", grace_days=0)
    anna = member(engine)
    buy(engine, anna, "1200.00", at=T0)
    new_year = datetime(2026, 12, 31, 21, 0, tzinfo=UTC)  # 1 January 2027 in Moscow
    buy(engine, anna, "1200.00", at=new_year - DAY)  # 2026 again: silver for 2027 too
    assert review_tiers(engine, now=new_year + DAY) == 0
    assert code(engine, anna, new_year + DAY) == "silver"
    assert review_tiers(engine, now=new_year + 366 * DAY) == 1  # nothing bought in 2027


def test_a_yearly_status_holds_through_the_next_year_with_monthly_reviews(
    engine: Engine,
) -> None:
    program(engine, window={"period": "year"}, review="month", grace_days=30)
    anna = member(engine)
    buy(engine, anna, "1200.00", at=T0)  # silver for 2026
    new_year = datetime(2026, 12, 31, 21, 0, tzinfo=UTC)  # 1 January 2027 in Moscow
    for month in range(1, 13):  # every monthly review of 2027 looks back on 2026
        review_at = datetime(2027, month, 1, tzinfo=UTC) - timedelta(hours=3)
        assert review_tiers(engine, now=review_at + DAY) == 0, month
        assert code(engine, anna, review_at + DAY) == "silver", month
    january = new_year + 365 * DAY  # 2028 looks back on 2027, when nothing was bought
    review_tiers(engine, now=january + DAY)
    assert review_tiers(engine, now=january + 32 * DAY) == 1  # lowered when grace ends
    assert code(engine, anna, january + 32 * DAY) == "base"


# — by hand —


def test_a_tier_set_by_hand_holds_until_its_date_then_the_first_review_lowers_it(
    engine: Engine,
) -> None:
    program(engine, grace_days=30)
    anna = member(engine)
    changed = set_tier(engine, "kolos", anna, {"tier": "gold", "until": "2026-06-30",
                       "reason": "temporary VIP"}, actor="key:1", now=T0)  # fmt: skip
    until = datetime(2026, 6, 30, 21, 0, tzinfo=UTC)  # the end of 30 June in Moscow
    assert changed["tier"] == {"code": "gold", "name": "Золото", "since": T0.isoformat(),
                               "until": until.isoformat(), "manual": True,
                               "downgrade_at": None}  # fmt: skip
    assert changed["privileges"] == ["priority-line", "vip-service"]
    assert buy(engine, anna, "100.00", at=T0)["accrued"] == "5.00"  # gold-5
    for month in (4, 5, 6):
        moment = datetime(2026, month, 1, tzinfo=UTC) - timedelta(hours=3)
        review_tiers(engine, now=moment + DAY)
        assert code(engine, anna, moment + DAY) == "gold", month
    july = until
    assert review_tiers(engine, now=july - timedelta(seconds=1)) == 0
    assert review_tiers(engine, now=july + timedelta(hours=1)) == 1  # no grace after `until`
    assert code(engine, anna, july) == "base"  # 100.00 spent qualifies for nothing more
    [lowered, manual] = tier_history_of(engine, "kolos", anna)["items"]
    assert (manual["from"], manual["to"], manual["manual"], manual["reason"], manual["actor"]) == (
        None, "gold", True, "temporary VIP", "key:1")  # fmt: skip
    assert (lowered["from"], lowered["manual"]) == ("gold", False)
    assert lowered["reason"].startswith("the tier set by hand ended")


def test_a_tier_set_by_hand_without_a_date_stays_and_setting_it_again_writes_nothing(
    engine: Engine,
) -> None:
    program(engine)
    anna = member(engine)
    body = {"tier": "gold", "reason": "staff"}
    set_tier(engine, "kolos", anna, body, actor="key:1", now=T0)
    set_tier(engine, "kolos", anna, body, actor="key:1", now=T0 + DAY)
    assert _history_rows(engine) == 1
    assert review_tiers(engine, now=T0 + 400 * DAY) == 0
    assert code(engine, anna, T0 + 400 * DAY) == "gold"
    set_tier(engine, "kolos", anna, {"tier": "base", "reason": "left"}, actor="key:2", now=T0)
    assert history(engine, anna) == [(None, "gold"), ("gold", "base")]


def test_setting_a_tier_by_hand_refuses_what_is_not_a_tier_or_not_ahead(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    for body, loc in (({"tier": "platinum", "reason": "x"}, "tier"),
                      ({"tier": "gold"}, "reason"),
                      ({"tier": "gold", "reason": "x", "until": "2026-01-01"}, "until"),
                      ({"tier": "gold", "reason": "x", "until": "soon"}, "until"),
                      ({"tier": "gold", "reason": "x", "until": "2027-01-01T10:00:00"}, "until"),
                      ({"tier": "gold", "reason": "x", "level": 3}, "level")):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            set_tier(engine, "kolos", anna, body, actor="key:1", now=T0)
        assert loc in [problem.loc for problem in refused.value.problems], body
    assert _history_rows(engine) == 0


@pytest.mark.real_migration
def test_the_migration_fills_in_what_purchases_and_refunds_made_before_it_counted(
    engine: Engine,
) -> None:
    program(engine)
    anna = member(engine)
    lines = [{"sku": "NAPOLEON", "qty": "3", "price": "333.33", "discount": "0.01"},
             {"sku": "BORODINSKY", "qty": "0.5"}]  # fmt: skip
    bought = buy(engine, anna, at=T0, lines=lines)
    refund(engine, bought, T0, lines=[{"n": 0, "qty": 1}])
    refund(engine, bought, T0, lines=[{"n": 0, "qty": 1}, {"n": 1, "qty": "0.25"}])
    refund(engine, bought, T0)
    buy(engine, anna, "10.00", at=T0)
    live = _spend(engine)
    assert sum(live["refunds"]) == live["purchases"][0] == 99998 + 5000
    downgrade(engine, "0007")
    upgrade(engine)
    assert _spend(engine) == live


def _spend(engine: Engine) -> dict[str, list[int]]:
    with engine.connect() as connection:
        return {
            table.name: list(
                connection.execute(select(table.c.spend).order_by(table.c.id)).scalars()
            )
            for table in (purchases, refunds)
        }


# — many at once; costs —


@pytest.mark.slow
def test_two_workers_reviewing_at_once_apply_each_change_once(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    program(engine)
    people = [member(engine, f"2000{n:03d}") for n in range(60)]
    for who in people:
        refund(engine, buy(engine, who, "1000.00", at=T0), T0)
    later = T0 + 60 * DAY
    changed = at_once(lambda: review_tiers(engine, now=later, batch=7))
    assert sum(changed) == 60
    assert _history_rows(engine) == 120  # 60 upgrades, 60 downgrades
    assert {code(engine, who, later) for who in people} == {"base"}
    assert review_tiers(engine, now=later) == 0
    assert verify(engine)[1] == []


def test_a_purchase_waiting_on_a_tier_set_meanwhile_is_priced_at_it_and_keeps_it(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a purchase never reads a stale tier")
    program(engine)
    anna = member(engine)
    set_tier(engine, "kolos", anna, {"tier": "base", "reason": "a row of her own"},
             actor="key:1", now=T0)  # fmt: skip
    member_id = int(read_member(engine, "kolos", anna, now=T0)["id"])
    bought: list[dict[str, Any]] = []
    with engine.begin() as connection:  # an operator's change, holding the member as it does
        connection.execute(
            select(accounts.c.id).where(accounts.c.member_id == member_id).with_for_update()
        )
        connection.execute(
            update(member_tiers).where(member_tiers.c.member_id == member_id)
            .values(code="gold", manual=True, reason="VIP")
        )  # fmt: skip
        buyer = threading.Thread(target=lambda: bought.append(buy(engine, anna, "1500.00", at=T0)))
        buyer.start()
        time.sleep(0.5)  # the purchase's query waits for the member, its snapshot at base
    buyer.join()
    assert bought[0]["accrued"] == "75.00"  # priced at gold: the tier once it had the member
    assert code(engine, anna) == "gold"  # not "upgraded" to silver over the operator's gold
    assert history(engine, anna) == [(None, "base")]


def test_a_program_without_tiers_pays_no_query_for_them(engine: Engine) -> None:
    document = copy.deepcopy(PROGRAM)
    del document["tiers"]
    document["rules"] = []
    apply_program(engine, document, actor="test", now=T0)
    anna = member(engine)
    buy(engine, anna, "100.00", at=T0)  # the version compiled: no query for that below
    plain = statements_of(engine, lambda: buy(engine, anna, "100.00", at=T0))
    program(engine)  # the same program with tiers, as a new version
    buy(engine, anna, "100.00", at=T0)
    with_tiers = statements_of(engine, lambda: buy(engine, anna, "100.00", at=T0))
    # the member's spend and purchases in the window, from the kept standing: in the
    # load's one pipeline on PostgreSQL, a query of its own on SQLite
    read = 0 if engine.dialect.name == "postgresql" else 1
    assert len(with_tiers) == len(plain) + read
    set_tier(engine, "kolos", anna, {"tier": "gold", "reason": "x"}, actor="k", now=T0)
    at_the_top = statements_of(engine, lambda: buy(engine, anna, "100.00", at=T0))
    assert len(at_the_top) == len(plain) + read
    assert read_member(engine, "kolos", anna, now=T0)["next_tier"] is None


def _history_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(tier_history)).scalar_one())
