"""The referral fraud suite (issue 18), on both databases: a self-referral by each
identifier pays nothing, a ring of ten fresh accounts referring each other pays nothing,
five accounts on one (normalised) phone or email pay only the first — and honest
referrals are paid exactly once."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.mechanics.referrals.handlers import list_referrals
from kopilka.members.handlers import update_member
from kopilka.platform.tables import transfers
from tests.referrals.conftest import DAY, buy, code_of, join, settle
from tests.store.conftest import NOW


def referral_transfers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).where(transfers.c.transfer_key.like("zerno:referral:%"))
        ).scalar_one())  # fmt: skip


def statuses(engine: Engine) -> list[tuple[str, list[str]]]:
    """Each referral's status and reasons, oldest first."""
    items = list_referrals(engine, "zerno", limit=500)["items"]
    return [(item["status"], item["reasons"]) for item in reversed(items)]


def after_the_wait(engine: Engine, *cards: str) -> dict[str, int]:
    """Each friend buys, and the worker runs once their purchases have stood."""
    for card in cards:
        buy(engine, card, at=NOW + DAY)
    return settle(engine, NOW + 20 * DAY)


# — self-referral: the friend is the referrer under another name —

REGISTRATION_TWINS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # the referrer's phone changed since; the friend registers with the old one
    "phone": ({"phone": "+7 912 000-00-01"}, {"phone": "8 (912) 000-00-01"}),
    "email": ({"email": "Ivan.Petrov@gmail.com"}, {"email": "ivanpetrov+promo@googlemail.com"}),
    "device": ({"device": "iphone-7f3a"}, {"device": "iphone-7f3a"}),
}


@pytest.mark.parametrize("kind", REGISTRATION_TWINS)
def test_a_self_referral_by_a_profile_identity_is_rejected_at_registration_and_never_pays(
    cafe: Engine, kind: str
) -> None:
    referrer, friend = REGISTRATION_TWINS[kind]
    join(cafe, "100001", **referrer)
    if kind == "phone":  # phones are unique: the referrer moved to a new number first
        update_member(cafe, "zerno", "card:100001", {"phone": "+79120000009"}, now=NOW)
    answer = join(cafe, "100002", referral_code=code_of(cafe, "100001"), **friend)
    assert answer["referrals"]["code"]  # the registration itself went through
    assert statuses(cafe) == [("rejected", [f"self_referral_{kind}"])]
    assert after_the_wait(cafe, "100002")["referrals_paid"] == 0
    assert referral_transfers(cafe) == 0


def test_a_self_referral_by_the_member_card_is_rejected(cafe: Engine) -> None:
    join(cafe, "100001")
    join(cafe, "0100-001", referral_code=code_of(cafe, "100001"))  # the same card, re-keyed
    assert statuses(cafe) == [("rejected", ["self_referral_card"])]
    assert after_the_wait(cafe, "0100-001")["referrals_paid"] == 0


@pytest.mark.parametrize(("kind", "payment"), [
    ("payment_card", {"bin": "220070", "last4": "4242"}),
    ("device", {"device": "android-55b1"}),
])  # fmt: skip
def test_a_friend_paying_with_the_referrer_s_card_or_device_is_rejected_by_the_worker(
    cafe: Engine, kind: str, payment: dict[str, str]
) -> None:
    join(cafe, "100001")
    buy(cafe, "100001", payment=payment)  # seen on the referrer's own purchase
    join(cafe, "100002", referral_code=code_of(cafe, "100001"))
    assert statuses(cafe) == [("waiting", [])]
    buy(cafe, "100002", at=NOW + DAY, payment=payment)
    assert settle(cafe, NOW + 20 * DAY)["referrals_rejected"] == 1
    assert statuses(cafe) == [("rejected", [f"self_referral_{kind}"])]
    assert referral_transfers(cafe) == 0


# — rings and shared identities —


def test_a_ring_of_ten_fresh_accounts_referring_each_other_pays_nothing(cafe: Engine) -> None:
    cards = [f"2000{n:02}" for n in range(10)]
    join(cafe, cards[0])
    for referrer, friend in itertools.pairwise(cards):
        join(cafe, friend, referral_code=code_of(cafe, referrer), at=NOW + DAY)
    outcome = after_the_wait(cafe, *cards)
    assert outcome == {"referrals_paid": 0, "referrals_review": 9, "referrals_rejected": 0}
    assert statuses(cafe) == [("review", ["referral_chain"])] * 9
    assert referral_transfers(cafe) == 0


def test_an_old_member_s_honest_friends_are_each_paid_once(cafe: Engine) -> None:
    join(cafe, "100001", at=NOW - 100 * DAY)
    code = code_of(cafe, "100001")
    friends = [f"30000{n}" for n in range(3)]
    for n, card in enumerate(friends):
        join(cafe, card, referral_code=code, phone=f"+7912000010{n}",
             email=f"friend{n}@example.ru", device=f"device-{n}")  # fmt: skip
    assert after_the_wait(cafe, *friends)["referrals_paid"] == 3
    assert settle(cafe, NOW + 60 * DAY)["referrals_paid"] == 0
    assert referral_transfers(cafe) == 6


def test_five_accounts_on_one_phone_pay_only_the_first(cafe: Engine) -> None:
    join(cafe, "100001", phone="+79121111111")
    code = code_of(cafe, "100001")
    friends = [f"40000{n}" for n in range(5)]
    for n, card in enumerate(friends):
        join(cafe, card, referral_code=code, phone="+7 912 222-22-22")
        # the phone is freed for the next account (a profile holds a phone once)
        update_member(cafe, "zerno", f"card:{card}", {"phone": f"+7912333333{n}"}, now=NOW)
    assert after_the_wait(cafe, *friends)["referrals_paid"] == 1
    assert statuses(cafe) == [("paid", [])] + [("review", ["shared_phone"])] * 4
    assert referral_transfers(cafe) == 2


def test_five_accounts_on_one_gmail_mailbox_pay_only_the_first(cafe: Engine) -> None:
    join(cafe, "100001", email="owner@example.ru")
    code = code_of(cafe, "100001")
    emails = ["maria.k@gmail.com", "mariak+1@gmail.com", "m.a.r.i.a.k@gmail.com",
              "MariaK+promo@googlemail.com", "maria.k+2@gmail.com"]  # fmt: skip
    friends = [f"50000{n}" for n in range(5)]
    for card, email in zip(friends, emails, strict=True):
        join(cafe, card, referral_code=code, email=email)
    assert after_the_wait(cafe, *friends)["referrals_paid"] == 1
    assert statuses(cafe) == [("paid", [])] + [("review", ["shared_email"])] * 4
