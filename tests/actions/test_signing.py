"""The callback's signature: HMAC-SHA256 of "<timestamp>.<program>.<action>.<raw body>",
within 5 minutes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from kopilka.mechanics.actions.signing import Signed, secrets_in, signature_of, signature_problem

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
SECRET = "a-secret-of-at-least-16"
BODY = b'{"member": "card:100001", "external_id": "sv-1"}'
SIGNED = Signed("zerno", "survey", BODY)


def test_the_signature_is_the_documented_hmac():
    message = f"{STAMP}.zerno.survey.".encode() + BODY
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert signature_of(SECRET, STAMP, "zerno", "survey", BODY) == f"sha256={expected}"


def test_a_valid_signature_passes_and_anything_else_says_why():
    good = signature_of(SECRET, STAMP, "zerno", "survey", BODY)
    assert signature_problem([SECRET], STAMP, good, SIGNED, NOW) is None
    assert signature_problem([], STAMP, good, SIGNED, NOW) == (
        "callbacks of this action are not configured"
    )
    assert "send X-Kopilka-Timestamp" in str(signature_problem([SECRET], None, good, SIGNED, NOW))
    assert "not a Unix time" in str(signature_problem([SECRET], "١٧٠٠", good, SIGNED, NOW))
    old = str(int(NOW.timestamp()) - 301)
    assert "more than 5 minutes" in str(
        signature_problem(
            [SECRET], old, signature_of(SECRET, old, "zerno", "survey", BODY), SIGNED, NOW
        )
    )
    assert "does not match" in str(
        signature_problem([SECRET], STAMP, good, Signed("zerno", "survey", BODY + b" "), NOW)
    )
    assert "is not sha256=" in str(signature_problem([SECRET], STAMP, good[7:], SIGNED, NOW))


def test_a_signature_for_one_action_or_program_is_no_signature_for_another():
    good = signature_of(SECRET, STAMP, "zerno", "survey", BODY)
    for program, action in (("zerno", "review"), ("north", "survey")):
        problem = signature_problem([SECRET], STAMP, good, Signed(program, action, BODY), NOW)
        assert problem == "the signature does not match the body", (program, action)


def test_while_a_secret_is_rotated_either_signs():
    secrets = secrets_in(f"new-secret-0123456789, {SECRET}")
    assert secrets == ["new-secret-0123456789", SECRET]
    assert (
        signature_problem(
            secrets, STAMP, signature_of(SECRET, STAMP, "zerno", "survey", BODY), SIGNED, NOW
        )
        is None
    )


def test_a_secret_too_short_is_none():
    assert secrets_in("short") == []
    assert secrets_in(None) == []
    assert secrets_in("") == []
