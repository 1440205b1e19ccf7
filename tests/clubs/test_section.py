"""The `clubs` section of the program file and a rule's `when: {clubs}`: what parses, and
every mistake named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.clubs.model import JoinBy, Term
from kopilka.mechanics.clubs.section import clubs_of
from tests.clubs.conftest import club_program


def _problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_program(document)
    return [str(problem) for problem in caught.value.problems]


def _with_clubs(*clubs: dict[str, Any], **more: Any) -> dict[str, Any]:
    document = club_program()
    document["clubs"] = list(clubs)
    document.update(more)
    return document


def test_the_clubs_parse_with_their_terms_and_privileges() -> None:
    settings = clubs_of(parse_program(club_program()))
    assert settings is not None
    wine, friends, trial = settings.clubs.values()
    assert wine.join_by is JoinBy.PAYMENT
    assert wine.payment is not None
    assert (wine.payment.fee, wine.payment.points, wine.payment.term) == (99000, 50000, Term(1))
    assert (wine.payment.auto_renew, wine.payment.grace_days) == (True, 3)
    assert wine.privileges.categories == {"reserve"}
    assert friends.join_by is JoinBy.INVITATION
    assert friends.payment is None
    assert trial.payment is not None
    assert trial.payment.term == Term(days=10)
    assert settings.flags_of(["wine", "friends"]) == ("sommelier", "vip-service")


def test_a_rule_names_only_a_club_of_the_section() -> None:
    document = club_program()
    document["rules"][-1]["when"] = {"clubs": ["golf"]}
    assert "(wine-triple).when.clubs: unknown club 'golf'" in _problems(document)[0]
    del document["clubs"]
    assert any("unknown club 'golf'" in problem for problem in _problems(document))


@pytest.mark.parametrize(
    ("club", "message"),
    [
        ({"code": "x", "join": {"by": "invitation", "fee": "10.00"}},
         "clubs[0] (x).join.fee: is a paid club's term; a club joined by invitation has none"),
        ({"code": "x", "join": {"by": "payment", "period": "month"}},
         "clubs[0] (x).join.fee: is required"),
        ({"code": "x", "join": {"by": "payment", "fee": "1.00"}},
         "clubs[0] (x).join.period: is required"),
        ({"code": "x", "join": {"by": "payment", "fee": "1.00", "period": "week"}},
         "clubs[0] (x).join.period: 'week' is not one of month|quarter|year"),
        ({"code": "x", "join": {"by": "payment", "fee": "1.00", "period": "year", "days": 5}},
         "clubs[0] (x).join: give the period or a number of days, not both"),
        ({"code": "x", "join": {"by": "payment", "fee": "1.001", "days": 5}},
         "clubs[0] (x).join.fee: 1.001 has more than 2 decimals (money)"),
        ({"code": "x", "join": {"by": "subscription"}},
         "clubs[0] (x).join.by: 'subscription' is not one of payment|invitation"),
        ({"code": "x", "join": {"by": "invitation"}, "privileges": {"skus": ["NOPE"]}},
         "clubs[0] (x).privileges.skus: unknown product 'NOPE' (not in the catalog)"),
        ({"code": "x", "join": {"by": "invitation"},
          "privileges": {"early_access": [{"skus": ["NEW-1"], "members_from": "2026-04-01",
                                           "everyone_from": "2026-03-01"}]}},
         "everyone_from: 2026-03-01 is not after members_from (2026-04-01)"),
        ({"code": "x", "join": {"by": "invitation"}, "perks": []},
         "clubs[0] (x).perks: unknown key; known keys: code, name, join, privileges"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_by_its_path(club: dict[str, Any], message: str) -> None:
    document = _with_clubs(club)
    document["rules"] = document["rules"][:-1]  # the wine rule needs the wine club
    assert any(message in problem for problem in _problems(document)), _problems(document)


def test_a_club_declared_twice_is_named() -> None:
    club = {"code": "x", "join": {"by": "invitation"}}
    document = _with_clubs(club, club)
    document["rules"] = document["rules"][:-1]
    assert "clubs[1] (x).code: club 'x' is declared twice" in _problems(document)


def test_every_key_of_the_section_is_documented_in_program_md() -> None:
    import re
    from pathlib import Path

    from kopilka.mechanics.clubs import section

    doc = (Path(__file__).resolve().parents[2] / "docs" / "program.md").read_text("utf-8")
    clubs_part = doc[doc.index("## `clubs`") :]
    clubs_part = clubs_part[: clubs_part.find("\n## ", 5)]
    rows = set(re.findall(r"^\| `(\w+)` \|", clubs_part, re.MULTILINE))
    keys = {*section.CLUB_KEYS, *section.JOIN_KEYS, *section.PRIVILEGE_KEYS}
    assert keys <= rows, sorted(keys - rows)
    assert all(key in clubs_part for key in section.EARLY_KEYS)
    assert "| `clubs` |" in doc[doc.index("### `when`") :]
