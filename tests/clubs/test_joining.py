"""Joining a club: by payment (money checked against the fee, or points as a ledger
transfer), by invitation (an invite code's limit held even when members race for the
last use), paying the next period, leaving — every change in the membership's history."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from kopilka.kernel.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidInput,
    KopilkaError,
    NotFound,
)
from kopilka.ledger.verify import verify
from kopilka.mechanics.clubs import handlers as clubs
from kopilka.mechanics.clubs.tables import club_events, club_memberships
from kopilka.members.balances import adjust, balance, history
from tests.clubs.conftest import DAY, NOW, buy, invite, join_by_invite, member, pay


def _rows(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_paying_the_fee_makes_a_member_for_a_month_with_its_grace(cafe: Engine) -> None:
    who = member(cafe, "300001")
    answer, made = pay(cafe, who, reference="PAY-1")
    assert made
    assert answer["status"] == "active"
    assert answer["joined_by"] == "payment"
    assert answer["since"] == NOW.isoformat()
    assert answer["paid_until"] == "2026-04-10T09:00:00+00:00"
    assert answer["in_force_until"] == "2026-04-13T09:00:00+00:00"  # three days' grace
    assert answer["auto_renew"] is True
    assert answer["made_by"] == "key:1"
    history_ = clubs.membership_history(cafe, "zerno", who, "wine", now=NOW)
    assert [(e["action"], e["amount"], e["payment_ref"]) for e in history_["events"]] == [
        ("join", "990.00", "PAY-1")
    ]


def test_the_same_payment_again_changes_nothing_and_another_body_is_a_conflict(
    cafe: Engine,
) -> None:
    who, other = member(cafe, "300002"), member(cafe, "300003")
    first, _ = pay(cafe, who, reference="PAY-2")
    again, made = pay(cafe, who, reference="PAY-2")
    assert not made
    assert again == first
    with pytest.raises(IdempotencyConflict):
        pay(cafe, other, reference="PAY-2")
    assert _rows(cafe, club_events) == 1


def test_money_that_is_not_the_fee_is_refused_naming_the_amount(cafe: Engine) -> None:
    who = member(cafe, "300004")
    with pytest.raises(InvalidInput) as caught:
        pay(cafe, who, amount="900.00")
    assert caught.value.problems[0].loc == "payment.amount"
    assert "990.00 RUB" in caught.value.problems[0].message
    assert _rows(cafe, club_memberships) == 0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"club": "wine"}, "payment"),
        ({"club": "wine", "payment": {"reference": "P", "amount": "990.00", "points": "500"}},
         "payment"),
        ({"club": "wine", "payment": {"amount": "990.00"}}, "payment.reference"),
        ({"club": "wine", "payment": {"reference": "P", "amount": "9.9.9"}}, "payment.amount"),
        ({"club": "wine", "invite": "ABCD"}, "invite"),
        ({"club": "friends", "payment": {"reference": "P", "amount": "1"}}, "payment"),
        ({"club": "friends"}, "invite"),
        ({"club": "trial", "payment": {"reference": "P", "points": "10"}}, "payment.points"),
        ({"club": "wine", "colour": "red"}, "colour"),
        ({"club": "wine\u0000"}, "club"),
        ("wine", ""),
    ],
)  # fmt: skip
def test_bad_input_is_named(cafe: Engine, body: object, where: str) -> None:
    who = member(cafe, "300005")
    with pytest.raises(InvalidInput) as caught:
        clubs.join_club(cafe, "zerno", who, body, actor="t", now=NOW)
    assert where in [problem.loc for problem in caught.value.problems]
    assert _rows(cafe, club_memberships) == 0


def test_an_unknown_club_or_member_is_not_found(cafe: Engine) -> None:
    who = member(cafe, "300006")
    with pytest.raises(NotFound):
        pay(cafe, who, "golf")
    with pytest.raises(NotFound):
        pay(cafe, "card:999999")


def test_the_fee_paid_with_points_is_a_ledger_transfer_with_its_own_reason(
    cafe: Engine,
) -> None:
    who = member(cafe, "300007")
    adjust(cafe, "zerno", who, {"points": "600", "reason": "gift"}, actor="t", now=NOW)
    payment = {"reference": "PTS-1", "points": "500"}
    answer, made = clubs.join_club(cafe, "zerno", who, {"club": "wine", "payment": payment},
                                   actor="key:1", now=NOW)  # fmt: skip
    assert made
    assert answer["status"] == "active"
    assert balance(cafe, "zerno", who)["available"] == "100.00"
    movements = history(cafe, "zerno", who)["items"]
    assert movements[0]["reason"] == "club.fee"
    assert movements[0]["points"] == "-500.00"
    assert verify(cafe)[1] == []


def test_too_few_points_refuse_the_fee_and_write_nothing(cafe: Engine) -> None:
    who = member(cafe, "300008")
    payment = {"reference": "PTS-2", "points": "500"}
    with pytest.raises(InsufficientPoints):
        clubs.join_club(cafe, "zerno", who, {"club": "wine", "payment": payment}, actor="t",
                        now=NOW)  # fmt: skip
    assert _rows(cafe, club_memberships) == 0
    assert _rows(cafe, club_events) == 0


def test_paying_again_while_a_member_adds_a_period_from_where_the_paid_one_ends(
    cafe: Engine,
) -> None:
    who = member(cafe, "300009")
    pay(cafe, who)
    answer, _ = pay(cafe, who, at=NOW + 10 * DAY)
    assert answer["since"] == NOW.isoformat()
    assert answer["paid_until"] == "2026-05-10T09:00:00+00:00"
    actions = [e["action"] for e in
               clubs.membership_history(cafe, "zerno", who, "wine", now=NOW)["events"]]  # fmt: skip
    assert actions == ["renew", "join"]


def test_an_invite_code_admits_as_many_members_as_its_limit(cafe: Engine) -> None:
    code = invite(cafe, 2)
    first, second, third = (member(cafe, card) for card in ("300010", "300011", "300012"))
    assert join_by_invite(cafe, first, code.lower())[0]["joined_by"] == "invitation"
    join_by_invite(cafe, second, code)
    with pytest.raises(Conflict, match="used its 2 time"):
        join_by_invite(cafe, third, code)
    listed = clubs.list_invites(cafe, "zerno", "friends", now=NOW)["items"][0]
    assert (listed["used"], listed["left"], listed["status"]) == (2, 0, "used_up")


def test_a_member_already_in_the_club_takes_no_use_of_a_code(cafe: Engine) -> None:
    code = invite(cafe, 5)
    who = member(cafe, "300013")
    join_by_invite(cafe, who, code)
    with pytest.raises(Conflict, match="already"):
        join_by_invite(cafe, who, code)
    assert clubs.list_invites(cafe, "zerno", "friends", now=NOW)["items"][0]["used"] == 1


def test_an_expired_or_unknown_code_admits_nobody(cafe: Engine) -> None:
    code = invite(cafe, 5, valid_until="2026-03-10")  # through the day, Moscow time
    who = member(cafe, "300014")
    with pytest.raises(InvalidInput) as caught:
        join_by_invite(cafe, who, "NOSUCHCODE")
    assert caught.value.problems[0].loc == "invite"
    with pytest.raises(Conflict, match="expired"):
        join_by_invite(cafe, who, code, at=NOW + DAY)
    assert join_by_invite(cafe, who, code, at=NOW)[0]["status"] == "active"


def test_members_racing_for_the_last_use_of_a_code_get_it_once(cafe: Engine) -> None:
    code = invite(cafe, 1)
    racers = [member(cafe, f"30010{n}") for n in range(6)]
    start = threading.Barrier(len(racers))

    def race(who: str) -> str:
        start.wait()
        try:
            join_by_invite(cafe, who, code)
        except KopilkaError as error:
            return error.code
        return "joined"

    with ThreadPoolExecutor(len(racers)) as pool:
        outcomes = list(pool.map(race, racers))
    assert sorted(outcomes) == ["conflict"] * 5 + ["joined"]
    assert clubs.list_invites(cafe, "zerno", "friends", now=NOW)["items"][0]["used"] == 1
    assert _rows(cafe, club_memberships) == 1
    assert verify(cafe)[1] == []


def test_a_member_who_leaves_is_out_at_once_and_leaving_again_changes_nothing(
    cafe: Engine,
) -> None:
    who = member(cafe, "300015")
    pay(cafe, who)
    answer, changed = clubs.leave_club(cafe, "zerno", who, "wine", {"note": "moved away"},
                                       actor="key:3", now=NOW + DAY)  # fmt: skip
    assert changed
    assert answer["status"] == "left"
    assert answer["auto_renew"] is False
    assert buy(cafe, who, "TEA-400", at=NOW + 2 * DAY)["accrued"] == "1.50"  # 1 %, not 3 %
    again, changed = clubs.leave_club(cafe, "zerno", who, "wine", None, actor="key:3",
                                      now=NOW + 3 * DAY)  # fmt: skip
    assert not changed
    assert again == answer
    events = clubs.membership_history(cafe, "zerno", who, "wine", now=NOW)["events"]
    assert [(e["action"], e["actor"], e["note"]) for e in events] == [
        ("leave", "key:3", "moved away"), ("join", "key:1", None)]  # fmt: skip
    with pytest.raises(NotFound):
        clubs.leave_club(cafe, "zerno", who, "friends", None, actor="t", now=NOW)


def test_a_member_who_left_may_join_again_for_a_new_period(cafe: Engine) -> None:
    who = member(cafe, "300016")
    pay(cafe, who)
    clubs.leave_club(cafe, "zerno", who, "wine", None, actor="t", now=NOW + DAY)
    answer, _ = pay(cafe, who, at=NOW + 5 * DAY)
    assert answer["status"] == "active"
    assert answer["since"] == (NOW + 5 * DAY).isoformat()
    assert answer["auto_renew"] is True


def test_two_payments_at_once_make_one_membership_of_two_periods(cafe: Engine) -> None:
    who = member(cafe, "300017")
    start = threading.Barrier(2)

    def paying(reference: str) -> None:
        start.wait()
        pay(cafe, who, reference=reference)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(paying, ["TWIN-1", "TWIN-2"]))
    answer = clubs.member_clubs(cafe, "zerno", who, now=NOW)["memberships"]
    assert [m["paid_until"] for m in answer] == ["2026-05-10T09:00:00+00:00"]
    assert sorted(clubs.membership_history(cafe, "zerno", who, "wine", now=NOW)["events"][i][
        "action"] for i in (0, 1)) == ["join", "renew"]  # fmt: skip


def test_verify_finds_an_invite_whose_uses_disagree_with_its_joins(cafe: Engine) -> None:
    from kopilka.mechanics.clubs.tables import club_invites

    code = invite(cafe, 3)
    join_by_invite(cafe, member(cafe, "300018"), code)
    assert verify(cafe)[1] == []
    with cafe.begin() as connection:
        connection.execute(club_invites.update().values(used=2))
    found = verify(cafe)[1]
    assert [d.check for d in found] == ["club invites' uses equal the joins they made"]
    assert "2 uses taken, 1 joins recorded" in found[0].detail
