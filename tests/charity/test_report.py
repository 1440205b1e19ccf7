"""The report per charity and period, to the point, its CSV, and the routes by HTTP."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.kernel.errors import InvalidInput
from kopilka.mechanics.charity.handlers import report, report_csv
from kopilka.members.standing import local_day
from kopilka.platform.http.app import create_app
from tests.api.conftest import key_for, serving_engine
from tests.charity.conftest import NOW, buy, give, join, round_up_to


def test_the_report_counts_each_charity_s_gifts_members_points_and_money(cafe: Engine) -> None:
    join(cafe, "700001", points="100")
    join(cafe, "700002", points="100")
    give(cafe, "700001", "children", "10.25")
    give(cafe, "700002", "children", "3")
    round_up_to(cafe, "700001")
    buy(cafe, "700001", qty=1)
    shown = report(cafe, "zerno", period="month", first="2026-01-01", last="2026-03-31", now=NOW)
    assert shown["items"] == [{
        "period_start": "2026-03-01", "charity": "children", "name": "Фонд «Дети»",
        "donations": 2, "round_ups": 1, "members": 2, "points": "13.75",
        "round_up_points": "0.50", "money": "13.75",
    }]  # fmt: skip
    assert shown["totals"][0]["points"] == "13.75"
    by_year = report(cafe, "zerno", period="year", first="2026-03-11", last="2026-12-31", now=NOW)
    assert by_year["items"] == []
    lines = list(csv.reader(io.StringIO(report_csv(cafe, "zerno", period="week", now=NOW))))
    assert lines[0][:3] == ["period_start", "charity", "name"]
    assert lines[1][0] == "2026-03-09"
    assert lines[1][6] == "13.75"


def test_a_wrong_period_or_span_is_named(cafe: Engine) -> None:
    for asked, loc in (({"period": "fortnight"}, "period"), ({"first": "2026-13-01"}, "from"),
                       ({"first": "2026-03-10", "last": "2026-03-01"}, "until")):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            report(cafe, "zerno", now=NOW, **asked)
        assert refused.value.problems[0].loc == loc


def test_the_routes_give_replay_refuse_and_export(cafe: Engine) -> None:
    with TestClient(create_app(serving_engine(cafe))) as client:
        join(cafe, "700003", points="20")
        pos = {"Authorization": f"Bearer {key_for(cafe, 'pos', location='kiosk')}"}
        analyst = {"Authorization": f"Bearer {key_for(cafe, 'analyst')}"}
        base = "/v1/programs/zerno"
        body = {"charity": "children", "points": "5"}
        first = client.post(f"{base}/members/card:700003/donations", json=body,
                            headers={**pos, "Idempotency-Key": "k-1"})  # fmt: skip
        again = client.post(f"{base}/members/card:700003/donations", json=body,
                            headers={**pos, "Idempotency-Key": "k-1"})  # fmt: skip
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        poor = client.post(f"{base}/members/card:700003/donations",
                           json={"charity": "children", "points": "100"}, headers=pos)  # fmt: skip
        assert (poor.status_code, poor.json()["code"]) == (422, "insufficient_points")
        missing = client.post(f"{base}/members/card:999999/donations", json=body, headers=pos)
        assert missing.status_code == 404
        refused = client.post(f"{base}/members/card:700003/donations", json=body, headers=analyst)
        assert refused.status_code == 403
        put = client.put(f"{base}/members/card:700003/charity", json={"charity": "children"},
                         headers=pos)  # fmt: skip
        assert put.status_code == 200
        assert put.json()["round_up"] == "children"
        exported = client.get(f"{base}/charity/report.csv?period=day", headers=analyst)
        today = local_day(datetime.now(UTC), "Europe/Moscow")  # the routes' clock is real
        assert exported.status_code == 200
        assert exported.text.splitlines()[1].startswith(f"{today},children,")
        shown = client.get(f"{base}/charity/report?period=day&from={today}", headers=analyst)
        assert shown.json()["items"][0]["points"] == "5.00"
