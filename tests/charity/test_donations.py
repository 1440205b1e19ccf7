"""A member gives points to a charity: one transfer off their lots, once per key."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from kopilka.kernel.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from kopilka.mechanics.charity.handlers import donate
from kopilka.mechanics.charity.tables import charity_donations
from kopilka.members.balances import make_adjustment
from kopilka.members.handlers import register_member
from kopilka.platform.tables import transfers
from kopilka.programs.handlers import apply_program
from tests.charity.conftest import (
    DAY,
    NOW,
    available,
    charity_balance,
    give,
    join,
    lots_left,
    program_with_charity,
    sound,
)
from tests.store.conftest import at_once


def test_a_donation_moves_the_points_to_the_charity_and_a_replay_gives_nothing_more(
    cafe: Engine,
) -> None:
    member = join(cafe, "500001", points="100")
    first = give(cafe, "500001", "children", "40.50", idempotency_key="gift-1")
    again = give(cafe, "500001", "children", "40.50", idempotency_key="gift-1")
    assert again == first
    assert first["points"] == "40.50"
    assert first["balance"] == {"available": "59.50"}
    assert available(cafe, "500001") == "59.50"
    assert lots_left(cafe, member) == 5950
    assert charity_balance(cafe, "children") == 4050
    with cafe.connect() as connection:
        rows = connection.execute(select(charity_donations)).all()
        reasons = connection.execute(
            select(transfers.c.reason).where(transfers.c.reason.like("charity.%"))
        ).scalars().all()  # fmt: skip
    assert [(r.charity, r.kind, r.points) for r in rows] == [("children", "donation", 4050)]
    assert reasons == ["charity.donation"]
    sound(cafe)


def test_a_donation_beyond_the_available_points_is_refused_and_writes_nothing(
    cafe: Engine,
) -> None:
    join(cafe, "500002", points="10")
    with pytest.raises(InsufficientPoints, match=r"10\.00 are available"):
        give(cafe, "500002", "children", "10.01")
    assert available(cafe, "500002") == "10.00"
    with cafe.connect() as connection:
        assert connection.execute(select(charity_donations)).all() == []


def test_an_unknown_or_closed_charity_and_bad_points_are_named(cafe: Engine) -> None:
    join(cafe, "500003", points="10")
    with pytest.raises(InvalidInput, match="not a charity of the program") as unknown:
        give(cafe, "500003", "nobody", "1")
    assert unknown.value.problems[0].loc == "charity"
    with pytest.raises(Conflict, match=f"last donations on {(NOW - DAY).date()}"):
        give(cafe, "500003", "forest", "1")
    for points in ("0", "-1", "1.001", "١"):
        with pytest.raises(InvalidInput):
            give(cafe, "500003", "children", points)
    assert available(cafe, "500003") == "10.00"


def test_another_program_s_member_is_not_found(cafe: Engine) -> None:
    apply_program(cafe, program_with_charity("other"), actor="test", now=NOW - 30 * DAY)
    other = register_member(cafe, "other", {"card": "900001"}, now=NOW - DAY)
    make_adjustment(cafe, "other", "card:900001", {"points": "50", "reason": "gift"},
                    actor="test", now=NOW - DAY)  # fmt: skip
    with pytest.raises(NotFound):
        donate(cafe, "zerno", str(other["id"]), {"charity": "children", "points": "1"},
               actor="pos", now=NOW)  # fmt: skip


def test_two_donations_at_once_never_give_more_than_the_member_has(cafe: Engine) -> None:
    member = join(cafe, "500004", points="10")

    def one() -> str:
        try:
            return str(give(cafe, "500004", "children", "6")["points"])
        except InsufficientPoints:
            return "refused"

    assert sorted(at_once(one)) == ["6.00", "refused"]
    assert available(cafe, "500004") == "4.00"
    assert lots_left(cafe, member) == 400
    assert charity_balance(cafe, "children") == 600
    sound(cafe)
