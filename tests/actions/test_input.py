"""Bad input is a clean 4xx naming its field, never a 500, and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from kopilka.mechanics.actions.tables import action_reports
from kopilka.platform.tables import transfers

PATH = "/actions/survey/reports"


def nothing_written(engine: Engine) -> bool:
    with engine.connect() as connection:
        return all(connection.execute(select(func.count()).select_from(table)).scalar_one() == 0
                   for table in (action_reports, transfers))  # fmt: skip


BAD_BODIES = {
    "an external id too long": ({"member": "card:100001", "external_id": "x" * 201},
                                "external_id", "at most 200"),
    "no external id": ({"member": "card:100001"}, "external_id", "is required"),
    "a blank external id": ({"member": "card:100001", "external_id": "  "}, "external_id", ""),
    "a control character": ({"member": "card:100001", "external_id": "a\u0000b"},
                            "external_id", "control character"),
    "a number for a member": ({"member": 100001, "external_id": "e-1"}, "member", ""),
    "an unknown key": ({"member": "card:100001", "external_id": "e-1", "points": "500"},
                       "points", "unknown key"),
    "a moment in other digits": ({"member": "card:100001", "external_id": "e-1",
                                  "occurred_at": "٢٠٢٦-03-09T16:30:00+03:00"},
                                 "occurred_at", "ISO 8601"),
    "a moment in the future": ({"member": "card:100001", "external_id": "e-1",
                                "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "future"),
    "a list": ([1, 2], "", "mapping"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_BODIES)
def test_a_bad_report_is_422_naming_its_field(partner, actions_engine, case):
    body, field, fragment = BAD_BODIES[case]
    answer = partner.post(PATH, body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert any(e["loc"] == field and fragment in e["message"] for e in problem["errors"]), problem
    assert nothing_written(actions_engine)


def test_deep_json_and_broken_json_are_clean_4xx(partner, actions_engine):
    deep = "[" * 5000 + "]" * 5000
    for raw in (deep, '{"member": ', '{"member": "card:100001", "external_id": "\\ud800"}'):
        answer = partner.client.post(partner.base + PATH, content=raw.encode(),
                                     headers={"Authorization": f"Bearer {partner.key}",
                                              "Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 422, raw[:20]
    too_big = b'{"member": "' + b"x" * (1 << 20) + b'"}'
    answer = partner.client.post(partner.base + PATH, content=too_big,
                                 headers={"Authorization": f"Bearer {partner.key}"})  # fmt: skip
    assert answer.status_code == 413
    assert nothing_written(actions_engine)


def test_an_unknown_member_reference_is_404(partner, actions_engine):
    for member in ("card:nobody", "٤٢", "nonsense:1"):
        answer = partner.post(PATH, {"member": member, "external_id": "e-1"})
        assert answer.status_code == 404, member
    assert nothing_written(actions_engine)


def test_paging_parameters_are_checked(partner):
    assert partner.get("/members/card:100001/actions", params={"limit": 0}).status_code == 422
    assert partner.get("/members/card:100001/actions",
                       params={"before": "١"}).status_code == 422  # fmt: skip
