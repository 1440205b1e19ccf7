"""Limits per referrer and per period (on both databases), and the pure parts: the
section's every mistake named by its path, identities normalised, the verdict."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.referrals.handlers import list_referrals
from kopilka.mechanics.referrals.model import (
    Facts,
    Kind,
    Limits,
    ReferralSettings,
    Rewards,
    Status,
    identities,
    judge,
    new_code,
    normalise_code,
    normalise_email,
)
from kopilka.mechanics.referrals.section import referrals_of
from tests.referrals.conftest import DAY, REFERRALS, buy, code_of, join, settle, with_referrals
from tests.store.conftest import NOW


def reasons(engine: Engine) -> list[tuple[str, list[str]]]:
    items = reversed(list_referrals(engine, "zerno")["items"])
    return [(item["status"], item["reasons"]) for item in items]


def invite(engine: Engine, referrer: str, friends: list[str], *, bought: Any = NOW) -> None:
    code = code_of(engine, referrer)
    for card in friends:
        join(engine, card, referral_code=code)
        buy(engine, card, at=bought)


def test_a_referrer_is_paid_at_most_per_referrer_times(zerno_engine: Engine) -> None:
    with_referrals(zerno_engine, limits={"per_referrer": 2})
    join(zerno_engine, "100001", at=NOW - 90 * DAY)
    invite(zerno_engine, "100001", ["200001", "200002", "200003"])
    assert settle(zerno_engine, NOW + 20 * DAY)["referrals_paid"] == 2
    assert reasons(zerno_engine)[-1] == ("rejected", ["limit_per_referrer"])


def test_a_referrer_is_paid_at_most_count_times_per_period(zerno_engine: Engine) -> None:
    with_referrals(zerno_engine, limits={"per_period": {"period": "month", "count": 1}})
    join(zerno_engine, "100001", at=NOW - 90 * DAY)
    invite(zerno_engine, "100001", ["200001", "200002"])  # both stand by the 24 March
    assert settle(zerno_engine, NOW + 20 * DAY)["referrals_paid"] == 1
    assert reasons(zerno_engine) == [("paid", []), ("rejected", ["limit_per_period"])]
    invite(zerno_engine, "100001", ["200003"], bought=NOW + 30 * DAY)  # stands in April
    assert settle(zerno_engine, NOW + 50 * DAY)["referrals_paid"] == 1


# — the section —


def parse(section: object) -> Any:
    return referrals_of(parse_program({"code": "z", "currency": "RUB", "referrals": section}))


def problems(section: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse(section)
    return {p.loc: p.message for p in caught.value.problems}


def test_the_section_reads_every_key_with_its_defaults() -> None:
    settings = parse(REFERRALS)
    assert settings.rewards == Rewards(30000, 15000)
    assert (settings.waiting_days, settings.min_purchase) == (14, 10000)
    assert settings.link_for("ABC2") == "https://zerno.example/r/ABC2"
    assert settings.limits == Limits()
    assert settings.review.chain_length == 4
    full = parse({**REFERRALS, "limits": {"per_referrer": 5, "per_period": {"period": "week",
                  "count": 2}}, "review": {"young_days": 7, "chain_length": 3,
                  "accounts_per_identity": 2, "accounts_per_device": 5}})  # fmt: skip
    assert (full.limits.per_referrer, full.limits.per_period.count) == (5, 2)
    assert (full.review.young_days, full.review.accounts_per_device) == (7, 5)


def test_every_mistake_of_the_section_is_named_by_its_path() -> None:
    found = problems({
        "reward": {}, "waiting_days": 400, "min_purchase": "1.001", "link": "ftp://x/{code}",
        "limits": {"per_referrer": 0, "per_period": {"period": "decade"}},
        "review": {"chain_length": 1}, "bonus": 1,
    })  # fmt: skip
    assert found == {
        "referrals.reward": "give the points of the referrer, the friend, or both",
        "referrals.waiting_days": "400 is more than 365",
        "referrals.min_purchase": "1.001 has more than 2 decimals (money)",
        "referrals.link": "'ftp://x/{code}' is not an http(s) address",
        "referrals.limits.per_referrer": "0 is less than 1",
        "referrals.limits.per_period.period": "'decade' is not one of day|week|month|quarter|year",
        "referrals.limits.per_period.count": "is required",
        "referrals.review.chain_length": "1 is less than 2",
        "referrals.bonus": "unknown key; known keys: reward, waiting_days, min_purchase, "
                           "limits, link, review",
    }  # fmt: skip
    assert problems({"reward": {"friend": "1"}, "link": "https://x.example/r"}) == {
        "referrals.link": "'https://x.example/r' must hold {code} once"}  # fmt: skip


# — the model —


def test_emails_fold_to_their_mailbox_and_codes_read_alike() -> None:
    assert normalise_email("Ivan.Petrov+promo@GoogleMail.com") == "ivanpetrov@gmail.com"
    assert normalise_email("ivan.petrov+x@example.ru") == "ivan.petrov@example.ru"
    assert normalise_email("anna-shop@yahoo.com") == "anna@yahoo.com"
    assert normalise_code("abcd-efgh") == "ABCDEFGH"
    codes = {new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(len(code) == 10 and code.isalnum() and code.isupper() for code in codes)


def test_the_verdict_rejects_a_self_referral_before_counting_limits_or_suspicions() -> None:
    settings = ReferralSettings(Rewards(1, 1), limits=Limits(per_referrer=1))
    phone = identities(phone="+79120000001")
    facts = Facts(frozenset(phone), frozenset(phone), chain_length=9, paid_by_referrer=5)
    assert judge(settings, facts).reasons == ("self_referral_phone",)
    honest = Facts(frozenset(identities(phone="+79120000002")), frozenset(phone))
    assert judge(settings, honest).status is Status.PAID
    assert judge(settings, Facts(honest.friend, honest.referrer, paid_by_referrer=1)).reasons == (
        "limit_per_referrer",)  # fmt: skip
    shared = Facts(honest.friend, honest.referrer, earlier_accounts={Kind.DEVICE: 3})
    assert judge(settings, shared).reasons == ("shared_device",)
