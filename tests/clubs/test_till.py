"""A club at the till: its rule's coefficient for its members in force only, read with the
purchase's one load; lines only its members may buy, and early access, refused for
everyone else with a reason naming the line, the sku and the club (nothing written); the
member's clubs and flags in the purchase's and the quote's answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.mechanics.clubs import handlers as clubs
from kopilka.mechanics.clubs.model import ClubOnly
from kopilka.members.handlers import read_member
from kopilka.platform.tables import purchases
from kopilka.programs.handlers import apply_program
from tests.clubs.conftest import (
    DAY,
    NOW,
    buy,
    club_program,
    invite,
    join_by_invite,
    member,
    pay,
    quote,
    receipt,
)
from tests.store.conftest import statements_of


def _purchases(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(purchases)).scalar_one())


def test_the_club_s_rule_triples_its_members_points_and_no_one_else_s(cafe: Engine) -> None:
    insider, outsider = member(cafe, "400001"), member(cafe, "400002")
    pay(cafe, insider)
    inside = buy(cafe, insider, "TEA-400")
    assert inside["accrued"] == "4.50"  # 150.00 × 1 % × 3
    assert inside["lines"][0]["explain"] == [
        {"rule": "wine-triple", "kind": "client", "coefficient": "3"}]  # fmt: skip
    assert buy(cafe, outsider, "TEA-400")["accrued"] == "1.50"
    assert quote(cafe, insider, "TEA-400")["accrued"] == "4.50"


def test_the_rule_stops_when_the_membership_runs_out_even_before_the_worker_runs(
    cafe: Engine,
) -> None:
    who = member(cafe, "400003")
    pay(cafe, who)
    in_grace = NOW + 32 * DAY  # paid until 10 April, in force until 13 April
    assert buy(cafe, who, "TEA-400", at=in_grace)["accrued"] == "4.50"
    after = NOW + 35 * DAY
    answer = buy(cafe, who, "TEA-400", at=after)
    assert answer["accrued"] == "1.50"
    assert answer["clubs"] == []


def test_what_the_clubs_read_rides_in_the_purchase_s_one_load(cafe: Engine) -> None:
    who = member(cafe, "400004")
    pay(cafe, who)
    buy(cafe, who, "TEA-400")  # the program's queries compiled and planned

    sent = statements_of(cafe, lambda: buy(cafe, who, "TEA-400"))
    loads = [sql for sql in sent if "club_memberships" in sql]
    assert len(loads) == 1
    assert "members" in loads[0]  # the same round trip as the member's own load
    if cafe.dialect.name == "postgresql":
        assert "accounts" in loads[0]


def test_a_members_only_line_is_refused_for_a_non_member_naming_line_sku_and_club(
    cafe: Engine,
) -> None:
    outsider = member(cafe, "400005")
    for who in (outsider, None):
        with pytest.raises(ClubOnly) as caught:
            buy(cafe, who, "TEA-400", "WINE-1")
        assert caught.value.code == "club_only"
        assert caught.value.extensions == {"line": 1, "sku": "WINE-1", "club": "wine",
                                           "reason": "members_only"}  # fmt: skip
        assert caught.value.problems[0].loc == "lines[1].sku"
        with pytest.raises(ClubOnly):
            quote(cafe, who, "WINE-1")
    assert _purchases(cafe) == 0


def test_a_members_only_line_is_sold_to_a_member(cafe: Engine) -> None:
    insider = member(cafe, "400006")
    pay(cafe, insider)
    answer = buy(cafe, insider, "WINE-1")
    assert answer["status"] == "completed"
    assert answer["accrued"] == "90.00"


def test_an_invitation_club_s_product_is_its_members_only(cafe: Engine) -> None:
    friend, stranger = member(cafe, "400007"), member(cafe, "400008")
    join_by_invite(cafe, friend, invite(cafe, 1))
    assert buy(cafe, friend, "SECRET-1")["status"] == "completed"
    with pytest.raises(ClubOnly) as caught:
        buy(cafe, stranger, "SECRET-1")
    assert caught.value.extensions["club"] == "friends"


def test_early_access_opens_to_members_first_and_to_everyone_on_its_date(cafe: Engine) -> None:
    insider, outsider = member(cafe, "400009"), member(cafe, "400010")
    pay(cafe, insider)
    with pytest.raises(ClubOnly) as caught:
        buy(cafe, outsider, "NEW-1")
    assert caught.value.extensions == {"line": 0, "sku": "NEW-1", "club": "wine",
                                       "reason": "early_access",
                                       "available_from": "2026-04-01"}  # fmt: skip
    assert buy(cafe, insider, "NEW-1")["status"] == "completed"
    opening_day = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
    assert buy(cafe, outsider, "NEW-1", at=opening_day)["status"] == "completed"


def test_before_the_members_date_a_member_is_told_when_it_opens_to_them(
    zerno_engine: Engine,
) -> None:
    apply_program(zerno_engine, club_program(), actor="t", now=datetime(2026, 2, 1, tzinfo=UTC))
    early = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
    who = member(zerno_engine, "400011", at=early)
    pay(zerno_engine, who, at=early)
    with pytest.raises(ClubOnly) as caught:
        buy(zerno_engine, who, "NEW-1", at=early)
    assert caught.value.extensions["available_from"] == "2026-03-01"


def test_the_answers_and_the_member_carry_the_clubs_flags_with_the_tier_s(
    cafe: Engine,
) -> None:
    who = member(cafe, "400012")
    pay(cafe, who)
    join_by_invite(cafe, who, invite(cafe, 1))
    answer = buy(cafe, who, "TEA-400")
    assert answer["clubs"] == ["friends", "wine"]
    assert answer["privileges"] == ["sommelier", "vip-service"]
    assert quote(cafe, who, "TEA-400")["privileges"] == ["sommelier", "vip-service"]
    document = read_member(cafe, "zerno", who, now=NOW)
    assert document["privileges"] == ["sommelier", "vip-service"]
    assert [m["club"] for m in document["clubs"]["memberships"]] == ["friends", "wine"]
    clubs.leave_club(cafe, "zerno", who, "friends", None, actor="t", now=NOW)
    assert read_member(cafe, "zerno", who, now=NOW)["privileges"] == ["sommelier"]


def test_a_program_without_clubs_answers_as_before(zerno_engine: Engine) -> None:
    who = member(zerno_engine, "400013")
    answer = buy(zerno_engine, who, "TEA-400")
    assert "clubs" not in answer
    assert "privileges" not in answer
    assert "clubs" not in read_member(zerno_engine, "zerno", who, now=NOW)


def test_a_till_s_clock_set_ahead_opens_no_early_access(cafe: Engine) -> None:
    outsider = member(cafe, "400014")
    body = receipt(outsider, "NEW-1", at=datetime(2026, 4, 2, 9, 0, tzinfo=UTC))
    with pytest.raises(ClubOnly):
        process_purchase(cafe, "zerno", body, now=NOW, actor="pos")
