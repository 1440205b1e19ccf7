"""Reporting an action with a key: credited once, repeated alike, refused by name — on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from kopilka.kernel.periods import CalendarPeriod
from kopilka.mechanics.actions.model import period_label
from kopilka.mechanics.actions.tables import action_reports
from kopilka.platform.tables import transfers
from tests.actions.conftest import OTHER
from tests.api.conftest import Api, key_for

ANNA = "card:100001"


def report(api: Api, action: str, external_id: str, member: str = ANNA, **more: Any) -> Any:
    return api.post(f"/actions/{action}/reports",
                    {"member": member, "external_id": external_id, **more})  # fmt: skip


def available(api: Api, member: str = ANNA) -> str:
    return str(api.get(f"/members/{member}/balance").json()["available"])


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(action_reports)).scalar_one()
        )


def test_a_report_credits_its_points_once_and_a_repeat_answers_the_same(partner):
    first = report(partner, "survey", "answer-1", occurred_at="2026-03-09T16:30:00+03:00")
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["status"] == "credited"
    assert answer["points"] == "50.00"
    assert answer["action"] == "survey"
    assert answer["external_id"] == "answer-1"
    assert answer["balance"] == {"available": "50.00"}
    again = report(partner, "survey", "answer-1", occurred_at="2026-03-09T13:30:00Z")
    assert again.status_code == 200  # the same moment, written otherwise: the same report
    assert again.json() == answer
    assert available(partner) == "50.00"
    history = partner.get(f"/members/{ANNA}/history").json()["items"]
    assert [(item["reason"], item["note"], item["points"]) for item in history] == [
        ("mechanic.award", "action survey", "50.00")
    ]


def test_the_same_external_id_with_another_body_is_an_idempotency_conflict(partner):
    assert report(partner, "review", "r-1").status_code == 201
    other = report(partner, "review", "r-1", member="card:100002")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert available(partner, "card:100002") == "0.00"
    # the same external id of another action is another report
    assert report(partner, "invite_friend", "r-1").status_code == 201


def test_the_limit_per_member_refuses_by_name_and_records_the_refusal(partner):
    assert report(partner, "survey", "a-1").status_code == 201
    refused = report(partner, "survey", "a-2")
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "conflict"
    assert problem["refused_by"] == "per_member"
    assert "per_member: 1 already reported, at most 1 per member" in problem["detail"]
    assert problem["report"]["status"] == "refused"
    assert problem["report"]["external_id"] == "a-2"
    assert problem["report"]["points"] == "0.00"
    assert report(partner, "survey", "a-2").json() == problem  # its repeat: the same refusal
    assert available(partner) == "50.00"
    listed = partner.get(f"/members/{ANNA}/actions").json()["items"]
    assert [(i["external_id"], i["status"], i["refused_by"]) for i in listed] == [
        ("a-2", "refused", "per_member"),
        ("a-1", "credited", None),
    ]
    # Boris has a survey of his own
    assert report(partner, "survey", "b-1", member="card:100002").status_code == 201


def test_the_limit_per_period_refuses_with_the_period_it_counted(partner):
    for n in (1, 2):
        assert report(partner, "review", f"r-{n}").status_code == 201
    refused = report(partner, "review", "r-3")
    assert refused.status_code == 409
    assert refused.json()["refused_by"] == "per_period"
    month = period_label(CalendarPeriod.MONTH, datetime.now(UTC).date().replace(day=1))
    assert f"per_period: 2 in {month}, at most 2 per month" in refused.json()["detail"]
    assert available(partner) == "41.00"  # 2 × 20.50


def test_an_action_outside_its_validity_window_is_refused(partner):
    refused = report(partner, "newsletter", "n-1")
    assert refused.status_code == 409
    assert refused.json()["refused_by"] == "valid"
    assert "valid: the action ran until 2020-12-31" in refused.json()["detail"]
    assert available(partner) == "0.00"


def test_an_unknown_action_or_another_programs_member_is_not_found(partner, actions_engine):
    assert report(partner, "dance", "d-1").status_code == 404
    foreign = report(partner, "survey", "s-1", member="card:900001")
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "not_found"
    north = Api(partner.client, key_for(actions_engine, "partner"), OTHER)
    assert report(north, "survey", "s-1").status_code == 404  # Анна is not north's
    assert rows(actions_engine) == 0


def test_an_action_reported_by_callback_only_is_forbidden_to_a_key(partner, actions_engine):
    refused = report(partner, "channel_subscription", "c-1")
    assert refused.status_code == 403
    assert rows(actions_engine) == 0


def test_roles_that_may_not_report_are_forbidden(client, actions_engine):
    for role in ("support", "analyst"):
        api = Api(client, key_for(actions_engine, role))
        assert report(api, "survey", f"{role}-1").status_code == 403
    pos = Api(client, key_for(actions_engine, "pos", location="kiosk"))
    assert report(pos, "invite_friend", "p-1").status_code == 201
    with actions_engine.connect() as connection:
        assert connection.execute(select(action_reports.c.location)).scalar_one() == "kiosk"


def test_points_are_credited_through_the_ledger_under_one_key(partner, actions_engine):
    report(partner, "invite_friend", "i-1")
    report(partner, "invite_friend", "i-1")
    with actions_engine.connect() as connection:
        keys = connection.execute(select(transfers.c.transfer_key, transfers.c.amount)
                                  .where(transfers.c.reason == "mechanic.award")).all()  # fmt: skip
    assert len(keys) == 1
    assert keys[0].amount == 10000
    assert keys[0].transfer_key.startswith("zerno:action:invite_friend:")


def test_the_member_document_and_the_catalogue_show_the_figures(partner, admin):
    report(partner, "survey", "s-1")
    report(partner, "survey", "s-2")
    report(partner, "review", "r-1")
    member = admin.get(f"/members/{ANNA}").json()
    assert member["actions"] == {"reports": 2, "points": "70.50",
                                 "by_action": {"review": 1, "survey": 1}}  # fmt: skip
    assert "actions" not in admin.get("/members/card:100002").json()
    items = {item["code"]: item for item in admin.get("/actions").json()["items"]}
    assert items["survey"]["reports"] == 1
    assert items["survey"]["members"] == 1
    assert items["survey"]["points_given"] == "50.00"
    assert items["survey"]["refused"] == {"per_member": 1, "per_period": 0, "valid": 0}
    assert items["survey"]["secret_env"] == "KOPILKA_ACTIONS_TEST_SECRET"
    assert items["survey"]["secret_set"] is True
    assert items["newsletter"]["running"] is False


def test_the_member_s_reports_come_by_pages(partner):
    for n in range(5):
        report(partner, "invite_friend", f"i-{n}")
    first = partner.get(f"/members/{ANNA}/actions", params={"limit": 2}).json()
    assert [item["external_id"] for item in first["items"]] == ["i-4", "i-3"]
    second = partner.get(f"/members/{ANNA}/actions",
                         params={"limit": 2, "before": first["next"]}).json()  # fmt: skip
    assert [item["external_id"] for item in second["items"]] == ["i-2", "i-1"]


def test_an_idempotency_key_answers_its_first_answer_as_on_any_post(partner):
    headers = {"Idempotency-Key": "K-1"}
    first = partner.post("/actions/invite_friend/reports",
                         {"member": ANNA, "external_id": "i-1"}, headers=headers)  # fmt: skip
    again = partner.post("/actions/invite_friend/reports",
                         {"member": ANNA, "external_id": "i-1"}, headers=headers)  # fmt: skip
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other = partner.post("/actions/invite_friend/reports",
                         {"member": ANNA, "external_id": "i-2"}, headers=headers)  # fmt: skip
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert available(partner) == "100.00"
