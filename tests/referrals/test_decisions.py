"""People's decisions at the store, on both databases: approvals racing pay once, a
waiting referral may be rejected early, and an approval over a limit is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from kopilka.kernel.errors import Conflict
from kopilka.mechanics.referrals.handlers import decide, list_referrals
from kopilka.members.balances import balance
from kopilka.members.handlers import update_member
from tests.referrals.conftest import DAY, buy, code_of, join, settle, with_referrals
from tests.store.conftest import NOW, at_once


def in_review(engine: Engine, friends: int = 2) -> list[str]:
    """Referrals in review: friends registering one after another on one phone."""
    join(engine, "100001", at=NOW - 90 * DAY)
    code = code_of(engine, "100001")
    for n in range(friends + 1):
        join(engine, f"20000{n}", referral_code=code, phone="+79125555555")
        update_member(engine, "zerno", f"card:20000{n}", {"phone": f"+7912666666{n}"}, now=NOW)
        buy(engine, f"20000{n}", at=NOW + DAY)
    settle(engine, NOW + 20 * DAY)
    return [item["id"] for item in list_referrals(engine, "zerno", status="review")["items"]]


def approve(engine: Engine, referral: str) -> bool:
    return decide(engine, "zerno", referral, "approve", None, actor="key:1",
                  now=NOW + 21 * DAY)[1]  # fmt: skip


def test_two_approvals_at_once_pay_once(cafe: Engine) -> None:
    first, _second = in_review(cafe)
    changed = at_once(lambda: approve(cafe, first), times=3)
    assert sorted(changed) == [False, False, True]
    assert balance(cafe, "zerno", "card:100001")["available"] == "600.00"  # 2 × 300


def test_a_waiting_referral_may_be_rejected_before_its_purchase(cafe: Engine) -> None:
    join(cafe, "100001")
    join(cafe, "100002", referral_code=code_of(cafe, "100001"))
    (waiting,) = [item["id"] for item in list_referrals(cafe, "zerno")["items"]]
    answer, changed = decide(cafe, "zerno", waiting, "reject", {"note": "a known farm"},
                             actor="key:1", now=NOW)  # fmt: skip
    assert (answer["status"], changed) == ("rejected", True)
    buy(cafe, "100002", at=NOW + DAY)
    assert settle(cafe, NOW + 30 * DAY) == {"referrals_paid": 0, "referrals_review": 0,
                                           "referrals_rejected": 0}  # fmt: skip
    with pytest.raises(Conflict):
        approve(cafe, waiting)


def test_an_approval_that_would_pass_a_limit_is_refused_and_stays_in_review(
    cafe: Engine,
) -> None:
    queued = in_review(cafe)
    with_referrals(cafe, limits={"per_referrer": 1})  # the honest first one used it up
    with pytest.raises(Conflict, match="limit_per_referrer"):
        approve(cafe, queued[0])
    assert [i["id"] for i in list_referrals(cafe, "zerno", status="review")["items"]] == queued
