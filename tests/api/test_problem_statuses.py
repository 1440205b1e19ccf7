"""Errors are domain errors; the one map of `kopilka.platform.problems` says how each is
answered: every error class has its status there, the API, the console and the command
line all take it from there, and the problem documents are as they always were."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import kopilka
from kopilka.kernel import errors
from kopilka.kernel.errors import (
    Conflict,
    CouponInvalid,
    Duplicate,
    InvalidInput,
    KopilkaError,
    NotFound,
    Problem,
    TooManyRequests,
    Unavailable,
)
from kopilka.platform.console.pages import PageError
from kopilka.platform.http.app import problem_response
from kopilka.platform.problems import RETRY_AFTER, STATUSES, problem_json, status_of


def _every_error_class() -> list[type[KopilkaError]]:
    """Every KopilkaError class of the package, its modules all imported first (the
    migrations are Alembic's scripts, not modules to import)."""
    for module in pkgutil.walk_packages(kopilka.__path__, "kopilka."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: list[type[KopilkaError]] = []
    todo: list[type[KopilkaError]] = [KopilkaError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("kopilka.")]


ERROR_CLASSES = _every_error_class()


def test_the_package_has_the_error_classes_it_is_known_for() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"InvalidInput", "NotFound", "Duplicate", "InsufficientCashback",
            "ExpiredLink"} <= names  # fmt: skip


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_error_class_has_a_status_in_the_map(cls: type[KopilkaError]) -> None:
    assert cls.code in STATUSES, f"{cls.__name__}: add {cls.code!r} to STATUSES"
    assert 400 <= STATUSES[cls.code] < 600
    # the map is the one place a status is said: no error class carries one of its own
    assert "status" not in vars(cls), f"{cls.__name__}: its status belongs in STATUSES"


def test_the_map_names_no_code_no_error_has() -> None:
    assert set(STATUSES) == {cls.code for cls in ERROR_CLASSES}
    assert set(RETRY_AFTER) <= set(STATUSES)


def test_the_kernel_errors_say_nothing_of_http() -> None:
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, KopilkaError):
            assert "status" not in vars(cls), cls
            assert cls.code
            assert cls.title


def test_the_statuses_are_the_apis_as_documented() -> None:
    assert {code: STATUSES[code] for code in (
        "validation_error", "insufficient_points", "not_found", "idempotency_conflict",
        "conflict", "coupon_invalid", "forbidden", "unauthorized", "payload_too_large",
        "too_many_requests", "unavailable", "insufficient_cashback", "link_expired",
        "link_revoked", "error",
    )} == {
        "validation_error": 422, "insufficient_points": 422, "not_found": 404,
        "idempotency_conflict": 409, "conflict": 409, "coupon_invalid": 422,
        "forbidden": 403, "unauthorized": 401, "payload_too_large": 413,
        "too_many_requests": 429, "unavailable": 503, "insufficient_cashback": 422,
        "link_expired": 410, "link_revoked": 410, "error": 400,
    }  # fmt: skip


def test_an_unknown_code_is_answered_as_a_plain_error() -> None:
    class Odd(KopilkaError):
        code = "odd_one"

    assert status_of(Odd("odd")) == 400


def test_the_problem_documents_are_as_before() -> None:
    invalid = InvalidInput([Problem("lines[0].qty", "must be positive"), Problem("", "x")])
    assert problem_json(invalid) == {
        "type": "https://kopilka.dev/problems/validation_error",
        "title": "Invalid input",
        "status": 422,
        "code": "validation_error",
        "detail": "lines[0].qty: must be positive (and 1 more)",
        "errors": [{"loc": "lines[0].qty", "message": "must be positive"},
                   {"loc": "", "message": "x"}],
    }  # fmt: skip
    refused = CouponInvalid("no such coupon", coupon="ABC", reason="not_found")
    assert problem_json(refused) == {
        "type": "https://kopilka.dev/problems/coupon_invalid",
        "title": "The coupon does not apply",
        "status": 422,
        "code": "coupon_invalid",
        "detail": "no such coupon",
        "coupon": "ABC",
        "reason": "not_found",
    }
    taken = problem_json(Duplicate("card 100001 is taken"))
    assert (taken["status"], taken["code"], taken["title"]) == (409, "conflict", "Already exists")


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (NotFound("no such member"), 404, None),
        (Conflict("settled"), 409, None),
        (TooManyRequests("slow down"), 429, "60"),
        (Unavailable("down"), 503, "1"),
    ],
)
def test_the_api_answers_with_the_maps_status(
    error: KopilkaError, status: int, retry_after: str | None
) -> None:
    answer = problem_response(error)
    assert answer.status_code == status
    assert answer.media_type == "application/problem+json"
    assert answer.headers.get("retry-after") == retry_after


def test_the_console_takes_its_error_pages_status_from_the_map() -> None:
    page = PageError.of(NotFound("member 'card:1' does not exist"), "There is no such page.")
    assert (page.status, page.message, page.detail) == (
        404, "There is no such page.", "member 'card:1' does not exist",
    )  # fmt: skip
