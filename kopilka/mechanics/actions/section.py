"""The `actions` section of the program file (docs/actions.md): the catalogue of actions
that give points, every mistake named by its place.

    actions:
      - code: survey
        name: Survey
        points: "50"
        limits: {per_member: 1, per_period: {period: month, count: 3}}
        reported_by: [partner, callback]
        secret_env: KOPILKA_ACTIONS_SURVEY_SECRET
        valid: {from: "2026-01-01", until: "2026-12-31"}

The program file is read by every operator, so a callback's shared secret is never in
it: `secret_env` names the server's environment variable that holds it.
"""

from __future__ import annotations

import re
from datetime import date

from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.actions.model import Action, ActionCatalogue, PeriodLimit, Reporter

ACTION_KEYS = ("code", "name", "points", "limits", "reported_by", "secret_env", "valid")
LIMIT_KEYS = ("per_member", "per_period")
PER_PERIOD_KEYS = ("period", "count")
VALID_KEYS = ("from", "until")
MAX_ACTIONS = 100  # a catalogue longer than this is a mistake, not a program
MAX_COUNT = 1_000_000  # the most reports a limit may allow
# only variables of this family may hold an action's secret: a program file can't point
# a callback at another secret of the server (the console's, the database's)
SECRET_ENV_PREFIX = "KOPILKA_ACTIONS_"
SECRET_ENV_PATTERN = re.compile(r"KOPILKA_ACTIONS_[A-Z0-9_]{1,100}")


def parse_section(top: Reader, context: SectionContext) -> ActionCatalogue | None:
    """The catalogue, or None when the program has no `actions`."""
    if not top.has("actions"):
        return None
    items = list(top.records("actions", ACTION_KEYS))
    if len(items) > MAX_ACTIONS:
        top.report(top.at("actions"), f"has {len(items)} actions; at most {MAX_ACTIONS}")
    actions: list[Action] = []
    codes: set[str] = set()
    for item in items:
        action = _action(item, context.point_digits)
        if action is None:
            continue
        if action.code in codes:
            item.report(item.at("code"), f"duplicate action code {show(action.code)}")
        codes.add(action.code)
        actions.append(action)
    return ActionCatalogue(tuple(actions))


def _action(item: Reader, point_digits: int) -> Action | None:
    code = item.code("code")
    points = item.minor("points", point_digits, unit="points", required=True)
    if points == 0:
        item.report(item.at("points"), "must be more than 0")
    name = item.text("name")
    reported_by = _reported_by(item)
    secret_env = _secret_env(item, reported_by)
    per_member, per_period = _limits(item)
    valid_from, valid_until = _valid(item)
    if code is None or not points:
        return None
    return Action(code=code, name=name or code, points=points, per_member=per_member,
                  per_period=per_period, reported_by=reported_by, secret_env=secret_env,
                  valid_from=valid_from, valid_until=valid_until)  # fmt: skip


def _reported_by(item: Reader) -> frozenset[Reporter]:
    listed = item.list("reported_by")
    if listed is None:
        return frozenset({Reporter.PARTNER})
    if not listed:
        item.report(item.at("reported_by"), "is empty; leave it out for [partner]")
    found: set[Reporter] = set()
    options = "|".join(reporter.value for reporter in Reporter)
    for loc, value in listed:
        reporter = next((r for r in Reporter if r.value == value), None)
        if reporter is None:
            item.report(loc, f"{show(value)} is not one of {options}")
        else:
            found.add(reporter)
    return frozenset(found) or frozenset({Reporter.PARTNER})


def _secret_env(item: Reader, reported_by: frozenset[Reporter]) -> str | None:
    if "secret" in item.data:  # reported as an unknown key too; this says why it can't be
        item.report(item.at("secret"), "a secret never goes in the program file (every "
                                       "operator reads it): name its environment variable "
                                       "in secret_env")  # fmt: skip
    name = item.text("secret_env", pattern=SECRET_ENV_PATTERN,
                     what=f"an environment variable name beginning {SECRET_ENV_PREFIX} "
                          "(capital letters, digits, '_')")  # fmt: skip
    by_callback = Reporter.CALLBACK in reported_by
    if by_callback and name is None and not item.has("secret_env"):
        item.report(item.at("secret_env"), "is required: an action reported by callback "
                                           "needs the variable of its shared secret")  # fmt: skip
    if not by_callback and item.has("secret_env"):
        item.report(item.at("secret_env"), "only an action reported_by callback has a secret")
    return name if by_callback else None


def _limits(item: Reader) -> tuple[int | None, PeriodLimit | None]:
    limits = item.mapping("limits", LIMIT_KEYS)
    if limits is None:
        return None, None
    per_member = limits.integer("per_member", minimum=1, maximum=MAX_COUNT)
    section = limits.mapping("per_period", PER_PERIOD_KEYS)
    if section is None:
        return per_member, None
    period = section.choice("period", CalendarPeriod, required=True)
    count = section.integer("count", required=True, minimum=1, maximum=MAX_COUNT)
    if period is None or count is None:
        return per_member, None
    return per_member, PeriodLimit(period, count)


def _valid(item: Reader) -> tuple[date | None, date | None]:
    valid = item.mapping("valid", VALID_KEYS)
    if valid is None:
        return None, None
    first, last = valid.day("from"), valid.day("until")
    if first is not None and last is not None and last < first:
        valid.report(valid.at("until"), f"{last.isoformat()} is before from "
                                        f"({first.isoformat()})")  # fmt: skip
    return first, last
