"""The `actions` section of the program file: what it declares, and every mistake named
by its place."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.actions.model import (
    Action,
    Counts,
    PeriodLimit,
    Refusal,
    Reporter,
    actions_of,
    judge,
    period_label,
)
from tests.actions.conftest import program_with_actions


def parsed(actions: Any) -> Any:
    document = program_with_actions()
    document["actions"] = actions
    return actions_of(parse_program(document))


def problems(actions: Any) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parsed(actions)
    return [str(problem) for problem in caught.value.problems]


def test_the_catalogue_reads_every_key():
    (survey,) = parsed([{
        "code": "survey", "name": "Survey", "points": "50.5",
        "limits": {"per_member": 1, "per_period": {"period": "month", "count": 3}},
        "reported_by": ["partner", "callback"], "secret_env": "KOPILKA_ACTIONS_SURVEY_SECRET",
        "valid": {"from": "2026-01-01", "until": "2026-12-31"},
    }]).actions  # fmt: skip
    assert survey == Action("survey", "Survey", 5050, 1, PeriodLimit(CalendarPeriod.MONTH, 3),
                            frozenset({Reporter.PARTNER, Reporter.CALLBACK}),
                            "KOPILKA_ACTIONS_SURVEY_SECRET", date(2026, 1, 1),
                            date(2026, 12, 31))  # fmt: skip


def test_defaults_a_partner_key_no_limits_and_the_code_as_name():
    (review,) = parsed([{"code": "review", "points": 20}]).actions
    assert review == Action("review", "review", 2000)


def test_a_program_without_actions_has_an_empty_catalogue():
    document = program_with_actions()
    del document["actions"]
    assert actions_of(parse_program(document)).actions == ()


MISTAKES = {
    "points in other digits": ([{"code": "a", "points": "٥٠"}],
                               "actions[0] (a).points: '٥٠' is not an amount"),
    "no points": ([{"code": "a"}], "actions[0] (a).points: is required"),
    "zero points": ([{"code": "a", "points": "0"}], "actions[0] (a).points: must be more than 0"),
    "too many decimals": ([{"code": "a", "points": "0.001"}], "has more than 2 decimals"),
    "a duplicate code": ([{"code": "a", "points": 1}, {"code": "a", "points": 2}],
                         "actions[1] (a).code: duplicate action code 'a'"),
    "a secret in the file": ([{"code": "a", "points": 1, "reported_by": ["callback"],
                               "secret": "hunter2hunter2hunter2"}],
                             "actions[0] (a).secret: a secret never goes in the program file"),
    "a callback without its secret": ([{"code": "a", "points": 1, "reported_by": ["callback"]}],
                                      "actions[0] (a).secret_env: is required"),
    "a secret of another family": ([{"code": "a", "points": 1, "reported_by": ["callback"],
                                     "secret_env": "KOPILKA_SECRET"}],
                                   "beginning KOPILKA_ACTIONS_"),
    "a secret without a callback": ([{"code": "a", "points": 1,
                                      "secret_env": "KOPILKA_ACTIONS_A"}],
                                    "only an action reported_by callback has a secret"),
    "an unknown reporter": ([{"code": "a", "points": 1, "reported_by": ["email"]}],
                            "actions[0] (a).reported_by[0]: 'email' is not one of "
                            "partner|callback"),
    "no reporter": ([{"code": "a", "points": 1, "reported_by": []}], "is empty"),
    "an unknown period": ([{"code": "a", "points": 1,
                            "limits": {"per_period": {"period": "moon", "count": 1}}}],
                          "'moon' is not one of day|week|month|quarter|year"),
    "a zero limit": ([{"code": "a", "points": 1, "limits": {"per_member": 0}}],
                     "actions[0] (a).limits.per_member: 0 is less than 1"),
    "a limit over the maximum": ([{"code": "a", "points": 1, "limits": {"per_member": 10**7}}],
                                 "is more than 1000000"),
    "a window backwards": ([{"code": "a", "points": 1,
                             "valid": {"from": "2026-02-01", "until": "2026-01-31"}}],
                           "actions[0] (a).valid.until: 2026-01-31 is before from"),
    "a long name": ([{"code": "a", "points": 1, "name": "n" * 201}], "at most 200"),
    "a bad code": ([{"code": "a b", "points": 1}], "is not a code"),
    "not a list": ({"code": "a"}, "actions: must be a list"),
    "too many": ([{"code": f"a{n}", "points": 1} for n in range(101)],
                 "actions: has 101 actions; at most 100"),
    "an unknown key": ([{"code": "a", "points": 1, "pionts": 1}], "did you mean 'points'"),
}  # fmt: skip


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_is_named_by_its_place(case):
    actions, expected = MISTAKES[case]
    found = problems(actions)
    assert any(expected in problem for problem in found), found


SURVEY = Action("survey", "Survey", 5000, per_member=2,
                per_period=PeriodLimit(CalendarPeriod.MONTH, 1),
                valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))  # fmt: skip


def test_the_verdict_names_what_stopped_a_report():
    day, month = date(2026, 12, 3), date(2026, 12, 1)
    assert judge(SURVEY, day, Counts(0, 0, month)).is_credited
    assert judge(SURVEY, day, Counts(1, 1, month)).message == (
        "per_period: 1 in 2026-12, at most 1 per month"
    )
    assert judge(SURVEY, day, Counts(2, 0, month)).refused_by is Refusal.PER_MEMBER
    assert judge(SURVEY, date(2027, 1, 1), Counts(0, 0, None)).message == (
        "valid: the action ran until 2026-12-31"
    )
    assert judge(SURVEY, date(2025, 12, 31), Counts(0, 0, None)).message == (
        "valid: the action runs from 2026-01-01"
    )


def test_periods_are_named_as_people_name_them():
    assert period_label(CalendarPeriod.DAY, date(2026, 12, 3)) == "2026-12-03"
    assert period_label(CalendarPeriod.WEEK, date(2026, 11, 30)) == (
        "the week 2026-11-30…2026-12-06"
    )
    assert period_label(CalendarPeriod.QUARTER, date(2026, 10, 1)) == "2026-Q4"
    assert period_label(CalendarPeriod.YEAR, date(2026, 1, 1)) == "2026"
