"""Reporting an action by a signed callback: a valid signature credits; anything else is
401 and writes nothing; the secret shows nowhere."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from kopilka.mechanics.actions.tables import action_counts, action_reports
from kopilka.platform.tables import transfers
from tests.actions.conftest import SECRET, SECRET_ENV, signed
from tests.api.conftest import Api

PATH = "/v1/programs/zerno/actions/{action}/callback"
BODY = json.dumps({"member": "card:100001", "external_id": "sv-1"}).encode()


def now_stamp(shift: int = 0) -> str:
    return str(int(time.time()) + shift)


def call(client: TestClient, headers: dict[str, str], body: bytes = BODY,
         action: str = "survey") -> Any:  # fmt: skip
    return client.post(PATH.format(action=action), content=body, headers=headers)


def written(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                   for table in (action_reports, action_counts, transfers))  # fmt: skip


def test_a_validly_signed_callback_credits_once(client, actions_engine):
    stamp = now_stamp()
    first = call(client, signed(BODY, stamp))
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "credited"
    assert first.json()["points"] == "50.00"
    assert "balance" not in first.json()  # an outside service is not told the balance
    again = call(client, signed(BODY, now_stamp()))
    assert again.status_code == 200
    assert again.json() == first.json()
    with actions_engine.connect() as connection:
        assert connection.execute(select(action_reports.c.reported_by)).scalar_one() == "callback"


def test_a_callback_only_action_is_reported_by_callback(client):
    body = json.dumps({"member": "card:100002", "external_id": "tg-1"}).encode()
    answer = call(client, signed(body, now_stamp(), action="channel_subscription"), body,
                  action="channel_subscription")  # fmt: skip
    assert answer.status_code == 201
    assert answer.json()["points"] == "5.00"


def _tampered() -> tuple[dict[str, str], bytes]:
    other = BODY.replace(b"sv-1", b"sv-2")
    return signed(BODY, now_stamp()), other


def _missing(header: str) -> tuple[dict[str, str], bytes]:
    headers = signed(BODY, now_stamp())
    del headers[header]
    return headers, BODY


REFUSED: dict[str, Callable[[], tuple[dict[str, str], bytes]]] = {
    "a wrong secret": lambda: (signed(BODY, now_stamp(), "another-secret-of-16+"), BODY),
    "a tampered body": _tampered,
    "no signature": lambda: _missing("X-Kopilka-Signature"),
    "no timestamp": lambda: _missing("X-Kopilka-Timestamp"),
    "a timestamp 6 minutes old": lambda: (signed(BODY, now_stamp(-360)), BODY),
    "a timestamp 6 minutes ahead": lambda: (signed(BODY, now_stamp(360)), BODY),
    "a timestamp with a fraction": lambda: (signed(BODY, now_stamp() + ".5"), BODY),
    "an upper-case signature": lambda: ({**signed(BODY, now_stamp()), "X-Kopilka-Signature":
                                         signed(BODY, now_stamp())["X-Kopilka-Signature"].upper()},
                                        BODY),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_a_callback_that_does_not_verify_is_401_and_writes_nothing(client, actions_engine, case):
    headers, body = REFUSED[case]()
    refused = call(client, headers, body)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "unauthorized"
    assert written(actions_engine) == 0


def test_without_the_secret_in_the_environment_callbacks_are_refused(
    client, actions_engine, monkeypatch
):
    monkeypatch.delenv(SECRET_ENV)
    refused = call(client, signed(BODY, now_stamp()))
    assert refused.status_code == 401
    assert "not configured" in refused.json()["detail"]
    assert written(actions_engine) == 0


def test_an_action_a_key_reports_only_takes_no_callback(client, actions_engine):
    body = json.dumps({"member": "card:100001", "external_id": "if-1"}).encode()
    assert call(client, signed(body, now_stamp()), body, action="invite_friend").status_code == 401
    assert written(actions_engine) == 0


def test_a_callback_for_an_unknown_action_or_program_is_not_found(client):
    assert call(client, signed(BODY, now_stamp()), action="dance").status_code == 404
    headers = signed(BODY, now_stamp())
    assert client.post("/v1/programs/nowhere/actions/survey/callback", content=BODY,
                       headers=headers).status_code == 404  # fmt: skip


def test_a_signed_body_that_is_not_a_report_is_a_clean_422(client, actions_engine):
    for body in (b"[1, 2", b'{"member": "card:100001"}', b'"just text"'):
        refused = call(client, signed(body, now_stamp()), body)
        assert refused.status_code == 422, body
    assert written(actions_engine) == 0


def test_the_secret_never_appears_in_an_answer_or_the_openapi_document(client, admin: Api):
    answers = [call(client, signed(BODY, now_stamp())),
               call(client, signed(BODY, now_stamp(), "another-secret-of-16+")),
               admin.get("/actions"), admin.get("/members/card:100001/actions"),
               admin.get("/members/card:100001"), client.get("/openapi.json")]  # fmt: skip
    for answer in answers:
        assert SECRET not in answer.text
    assert '"secret_set":true' in answers[2].text.replace(" ", "")


def test_a_callback_signed_for_one_action_is_refused_by_another_sharing_its_secret(client):
    """survey and channel_subscription share one secret: a request captured for one is
    no signature for the other (the program and the action are signed)."""
    body = json.dumps({"member": "card:100002", "external_id": "tg-2"}).encode()
    replayed = call(client, signed(body, now_stamp(), action="survey"), body,
                    action="channel_subscription")  # fmt: skip
    assert replayed.status_code == 401
    assert "does not match" in replayed.text
