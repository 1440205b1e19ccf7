"""Operator accounts, sign-in and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from argon2 import Type
from sqlalchemy import select, update

from kopilka.kernel.errors import Duplicate, InvalidInput
from kopilka.members.balances import balance
from kopilka.members.handlers import read_member
from kopilka.operators import handlers as operators
from kopilka.operators import keys as key_service
from kopilka.operators.tables import operator_sessions
from kopilka.operators.tables import operators as operator_rows
from kopilka.programs import rule_drafts
from kopilka.programs.handlers import read_program
from tests.store.conftest import NOW
from tests.web.conftest import CHEAP, PASSWORD, SERVERS_HASHER, stock


def test_an_operator_signs_in_with_the_password_and_not_with_another(zerno_engine):
    made = operators.create_operator(zerno_engine, "zerno", " Ann@Zerno.Example ", PASSWORD,
                                     "support", NOW)  # fmt: skip
    assert made.email == "ann@zerno.example"
    found = operators.authenticate(zerno_engine, "zerno", "ANN@zerno.example", PASSWORD, NOW)
    assert found == made
    assert operators.authenticate(zerno_engine, "zerno", made.email, "wrong password", NOW) is None
    assert operators.authenticate(zerno_engine, "other", made.email, PASSWORD, NOW) is None
    assert operators.authenticate(zerno_engine, "zerno", "nobody@x.example", PASSWORD, NOW) is None


def test_only_a_hash_of_the_password_is_stored(zerno_engine):
    operators.create_operator(zerno_engine, "zerno", "a@zerno.example", PASSWORD, "admin", NOW)
    with zerno_engine.connect() as connection:
        stored = connection.execute(select(operator_rows.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_an_email_is_unique_per_program_but_not_across_programs(zerno_engine):
    operators.create_operator(zerno_engine, "zerno", "a@x.example", PASSWORD, "admin", NOW)
    with pytest.raises(Duplicate):
        operators.create_operator(zerno_engine, "zerno", "A@x.example", PASSWORD, "admin", NOW)
    operators.create_operator(zerno_engine, "other", "a@x.example", PASSWORD, "admin", NOW)


@pytest.mark.parametrize(
    ("email", "password", "role", "field"),
    [("not-an-email", PASSWORD, "admin", "email"), ("a@x.example", "short", "admin", "password"),
     ("a@x.example", PASSWORD, "pos", "role")],
)  # fmt: skip
def test_a_new_operator_is_refused_with_the_field_named(zerno_engine, email, password, role,
                                                         field):  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        operators.create_operator(zerno_engine, "zerno", email, password, role, NOW)
    assert [problem.loc for problem in refused.value.problems] == [field]


def test_a_disabled_operator_can_not_sign_in_and_its_session_ends(zerno_engine):
    admin = operators.create_operator(zerno_engine, "zerno", "a@x.example", PASSWORD, "admin", NOW)
    other = operators.create_operator(zerno_engine, "zerno", "b@x.example", PASSWORD, "support",
                                      NOW)  # fmt: skip
    admins, others = (operators.start_session(zerno_engine, o, NOW) for o in (admin, other))
    assert operators.session_operator(zerno_engine, others, NOW) == other
    operators.disable_operator(zerno_engine, other.id, by=admin, now=NOW)
    assert operators.authenticate(zerno_engine, "zerno", other.email, PASSWORD, NOW) is None
    assert operators.session_operator(zerno_engine, others, NOW) is None
    assert operators.session_operator(zerno_engine, admins, NOW) == admin


def test_a_session_ends_when_signed_out_or_a_working_day_old(zerno_engine):
    admin = operators.create_operator(zerno_engine, "zerno", "a@x.example", PASSWORD, "admin", NOW)
    first, second = (operators.start_session(zerno_engine, admin, NOW) for _ in range(2))
    assert first != second
    later = NOW + timedelta(hours=operators.SESSION_HOURS) - timedelta(seconds=1)
    assert operators.session_operator(zerno_engine, first, later) == admin
    assert operators.session_operator(zerno_engine, first, later + timedelta(seconds=1)) is None
    operators.end_session(zerno_engine, first, NOW)
    operators.end_session(zerno_engine, first, NOW)  # again: nothing more happens
    assert operators.session_operator(zerno_engine, first, NOW) is None
    assert operators.session_operator(zerno_engine, second, NOW) == admin  # another browser
    assert operators.session_operator(zerno_engine, "not a token", NOW) is None
    with zerno_engine.connect() as connection:
        stored = connection.execute(select(operator_sessions.c.token_hash)).scalars().all()
    assert not {first, second} & set(stored)  # only hashes are kept
    logouts = [e for e in operators.audit_entries(zerno_engine, "zerno")
               if e["action"] == "operator.logout"]  # fmt: skip
    assert len(logouts) == 1


def test_the_servers_passwords_are_hashed_with_argon2id_at_full_strength():
    """The tests hash with cheap parameters (conftest); the server's own are argon2-cffi's
    defaults, RFC 9106's second recommendation: 3 passes over 64 MiB."""
    assert SERVERS_HASHER is not CHEAP
    assert SERVERS_HASHER.time_cost >= 3
    assert SERVERS_HASHER.memory_cost >= 65536  # KiB
    assert SERVERS_HASHER.type is Type.ID


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(zerno_engine):
    from argon2 import PasswordHasher

    made = operators.create_operator(zerno_engine, "zerno", "a@x.example", PASSWORD, "admin", NOW)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with zerno_engine.begin() as connection:
        connection.execute(update(operator_rows).values(password_hash=weak))
    assert operators.authenticate(zerno_engine, "zerno", made.email, PASSWORD, NOW) == made
    with zerno_engine.connect() as connection:
        assert connection.execute(select(operator_rows.c.password_hash)).scalar_one() != weak
    assert operators.authenticate(zerno_engine, "zerno", made.email, PASSWORD, NOW) == made


def test_an_adjustment_moves_the_points_and_is_audited_with_its_reason(zerno_engine):
    stock(zerno_engine)
    support = operators.authenticate(zerno_engine, "zerno", "support@zerno.example", PASSWORD,
                                     NOW)  # fmt: skip
    assert support is not None
    operators.adjust_points(zerno_engine, support, "1", "25", "a lost receipt", NOW)
    assert balance(zerno_engine, "zerno", "1")["available"] == "39.50"
    latest = operators.audit_entries(zerno_engine, "zerno")[0]
    assert (latest["operator"], latest["action"], latest["target"]) == (
        "support@zerno.example",
        "member.adjustment",
        "member:1",
    )
    assert latest["details"] == {"points": "25.00", "reason": "a lost receipt"}


def test_an_adjustment_without_a_reason_is_refused_and_not_audited(zerno_engine):
    stock(zerno_engine)
    support = operators.authenticate(zerno_engine, "zerno", "support@zerno.example", PASSWORD,
                                     NOW)  # fmt: skip
    assert support is not None
    before = len(operators.audit_entries(zerno_engine, "zerno"))
    with pytest.raises(InvalidInput):
        operators.adjust_points(zerno_engine, support, "1", "25", " ", NOW)
    assert len(operators.audit_entries(zerno_engine, "zerno")) == before


def test_an_action_and_its_audit_row_are_kept_or_lost_together(zerno_engine, monkeypatch):
    """The audit row is written in the action's transaction: when it can't be written,
    the adjustment, the block and the key are not made either."""
    stock(zerno_engine)
    admin = operators.authenticate(zerno_engine, "zerno", "admin@zerno.example", PASSWORD, NOW)
    assert admin is not None
    before = balance(zerno_engine, "zerno", "1")["available"]
    keys_before = key_service.list_keys(zerno_engine, "zerno")

    def broken(*_: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(operators, "record", broken)
    with pytest.raises(RuntimeError):
        operators.adjust_points(zerno_engine, admin, "1", "25", "a lost receipt", NOW)
    with pytest.raises(RuntimeError):
        operators.change_member_status(zerno_engine, admin, "1", "blocked", NOW)
    with pytest.raises(RuntimeError):
        operators.create_key(zerno_engine, admin, "admin", None, None, NOW)
    assert balance(zerno_engine, "zerno", "1")["available"] == before
    assert read_member(zerno_engine, "zerno", "1", now=NOW)["status"] == "active"
    assert key_service.list_keys(zerno_engine, "zerno") == keys_before


def test_a_published_version_and_its_audit_row_are_kept_or_lost_together(zerno_engine, monkeypatch):
    stock(zerno_engine)
    marketer = operators.authenticate(zerno_engine, "zerno", "marketer@zerno.example",
                                      PASSWORD, NOW)  # fmt: skip
    assert marketer is not None
    draft = rule_drafts.start_draft(zerno_engine, "zerno")
    changed = draft.with_rules([{**rule, "priority": 7} if n == 0 else rule
                                for n, rule in enumerate(draft.rules)])  # fmt: skip
    assert changed.is_changed

    def broken(*_: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(rule_drafts, "record", broken)
    with pytest.raises(RuntimeError):
        rule_drafts.publish(zerno_engine, marketer, changed, NOW)
    assert read_program(zerno_engine, "zerno")["version"] == draft.base  # nothing published
    monkeypatch.undo()
    applied = rule_drafts.publish(zerno_engine, marketer, changed, NOW)
    assert applied.version == draft.base + 1
    latest = operators.audit_entries(zerno_engine, "zerno", limit=1)[0]
    assert (latest["action"], latest["details"]["version"]) == ("program.publish", applied.version)


def test_the_dashboard_counts_members_and_the_points_of_each_day(zerno_engine):
    stock(zerno_engine)  # its purchase is made now: today's bar
    from datetime import UTC, datetime

    board = operators.dashboard(zerno_engine, "zerno", datetime.now(UTC))
    assert board.members == 2
    assert len(board.days) == 30
    assert board.days[-1].accrued == 1450  # 14.50 points in hundredths
    assert sum(day.accrued for day in board.days[:-1]) == 0
    assert board.active_members == 1  # one of the two bought
    assert board.liability == 1450  # the points members hold
    # K = 5 from card-5: the base rate gave 2.90, the rule's coefficient the other 11.60
    assert board.top_rules == [("card-5", 1160), (operators.BASE_RATE, 290)]
    assert sum(points for _, points in board.top_rules) == board.days[-1].accrued
    assert board.rule_bars[0][2] == 100
    assert board.rule_bars[1][2] == 25


def test_a_lines_points_are_split_between_the_base_rate_and_its_rules_exactly():
    explain = [{"rule": "gold", "kind": "client", "coefficient": "2"},
               {"rule": "tea", "kind": "product", "coefficient": "1.5"},
               {"rule": "limit", "kind": "product", "redeem_percent": "50"},
               {"rule": "rain", "kind": "behaviour", "coefficient": "0.5"}]  # fmt: skip
    shares = operators.line_shares(Fraction("15.00"), explain)
    # base 10 → ×2 (gold +10) → ×1.5 (tea +10) → ×0.5 (rain −15) = 15
    assert shares == {operators.BASE_RATE: 10, "gold": 10, "tea": 10, "rain": -15}
    assert sum(shares.values()) == 15
    thirds = operators.line_shares(Fraction(1), [{"rule": "a", "coefficient": "3"},
                                                 {"rule": "b", "coefficient": "7"}])  # fmt: skip
    assert sum(thirds.values()) == 1  # exact, whatever the coefficients
    fixed = [{"rule": "cup", "kind": "product", "points_per_unit": "5.00"},
             {"rule": "gold", "kind": "client", "coefficient": "2"}]  # fmt: skip
    assert operators.line_shares(Fraction(10), fixed) == {"cup": 10}
    assert operators.line_shares(Fraction(0), explain) == {}
    assert operators.line_shares(Fraction(4), []) == {operators.BASE_RATE: 4}


@pytest.mark.parametrize(
    ("query", "cards"),
    [("1000", ["100001", "100002"]), ("+7 912 345-67-89", ["100001"]), ("ANNA@example.com",
     ["100001"]), ("анна", ["100001"]), ("Петрова", ["100001"]), ("boris", ["100002"]),
     ("%", []), ("_", []), ("", [])],
)  # fmt: skip
def test_members_are_found_by_card_phone_email_or_name(zerno_engine, query, cards):
    stock(zerno_engine)
    found = operators.search_members(zerno_engine, "zerno", query)
    assert [row.card for row in found] == cards
