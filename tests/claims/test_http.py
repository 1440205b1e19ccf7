"""Claims over HTTP on both databases: support files, the partner decides — only its own
partner's claims (another's is a 404) — bad input is a clear 4xx; and the console's queue
with its SLA clocks, whose decisions are audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.operators import handlers as operators
from kopilka.operators.handlers import audit_entries, create_operator
from tests.api.conftest import Api, key_for, serving_engine
from tests.claims.conftest import DAY, HOUR, file, receipt
from tests.store.conftest import NOW
from tests.web.conftest import CHEAP, PASSWORD, console_app, csrf_of

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def client(cafe: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(operators, "_hasher", CHEAP)
    with TestClient(console_app(serving_engine(cafe)), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def support(client: TestClient, cafe: Engine) -> Api:
    return Api(client, key_for(cafe, "support"))


def partner_key(client: TestClient, cafe: Engine, partner: str) -> Api:
    return Api(client, key_for(cafe, "partner", partner=partner))


def recent(body: dict[str, Any]) -> dict[str, Any]:
    """A receipt of a recent noon in Moscow (the server's clock: the tests' NOW is in the
    past) that no behaviour rule of the café touches: not a Monday, not 8 March."""
    noon = datetime.now(MOSCOW).replace(hour=12, minute=0, second=0, microsecond=0)
    days = (noon - n * DAY for n in range(1, 4))
    day = next(d for d in days if d.weekday() != 0 and d.strftime("%m-%d") != "03-08")
    return {**body, "at": day.isoformat()}


def test_support_files_and_the_partner_confirms_once(
    client: TestClient, cafe: Engine, support: Api
) -> None:
    body = recent(receipt())
    filed = support.post("/claims", body)
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    assert (claim["status"], claim["overdue"]) == ("open", False)
    assert claim["filed_by"].startswith("key:")
    assert [e["action"] for e in claim["events"]] == ["file"]
    assert support.post("/claims", body).json()["id"] == claim["id"]  # one claim per receipt
    assert support.post("/claims", body).status_code == 200
    zerno = partner_key(client, cafe, "zerno")
    assert [c["id"] for c in zerno.get("/claims", params={"status": "open"}).json()["items"]] == [
        claim["id"]]  # fmt: skip
    done = zerno.post(f"/claims/{claim['id']}/confirm")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["points"]) == ("processed", "1.50")
    purchase = zerno.get(f"/purchases/{done.json()['purchase_id']}")
    assert purchase.json()["accrued"] == "1.50"
    again = zerno.post(f"/claims/{claim['id']}/reject", {"reason": "changed my mind"})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_another_partner_s_key_gets_404(client: TestClient, cafe: Engine, support: Api) -> None:
    claim = support.post("/claims", recent(receipt())).json()
    lavka = partner_key(client, cafe, "lavka")
    for answer in (lavka.post(f"/claims/{claim['id']}/confirm"),
                   lavka.post(f"/claims/{claim['id']}/reject", {"reason": "not ours"}),
                   lavka.get(f"/claims/{claim['id']}")):  # fmt: skip
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "not_found"
    assert lavka.get("/claims").json()["items"] == []
    assert support.get(f"/claims/{claim['id']}").json()["status"] == "open"


def test_who_may_do_what(client: TestClient, cafe: Engine, support: Api) -> None:
    claim = support.post("/claims", recent(receipt())).json()
    pos = Api(client, key_for(cafe, "pos", location="kiosk"))
    analyst = Api(client, key_for(cafe, "analyst"))
    assert pos.post("/claims", recent(receipt())).status_code == 403
    assert support.post(f"/claims/{claim['id']}/confirm").status_code == 403
    assert analyst.post(f"/claims/{claim['id']}/reject", {"reason": "x"}).status_code == 403
    assert analyst.get(f"/claims/{claim['id']}").status_code == 200


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"receipt_id": None}, "receipt_id", "is required"),
        ({"at": "yesterday"}, "at", "is not an ISO 8601 time"),
        ({"at": "2099-01-01T00:00:00+00:00"}, "at", "is in the future"),
        ({"at": "2020-01-01T00:00:00+00:00"}, "at", "too old to claim"),
        ({"location": "moon"}, "location", "is not a location"),
        ({"member": "card:999"}, "member", "does not exist"),
        ({"lines": []}, "lines", "is empty"),
        ({"lines": [{"sku": "NOPE-1", "qty": 1}]}, "lines[0]", "has no catalog price"),
        ({"note": "x" * 1001}, "note", "1000"),
        ({"redeem": "10"}, "redeem", "unknown key"),
    ],
)
def test_bad_filings_are_a_clear_422(
    support: Api, change: dict[str, Any], field: str, words: str
) -> None:
    body = {**recent(receipt()), **change}
    answer = support.post("/claims", {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert any(p["loc"].startswith(field) and words in p["message"]
               for p in problem["errors"]), problem  # fmt: skip


def test_bad_decisions_are_a_clear_4xx(client: TestClient, cafe: Engine, support: Api) -> None:
    claim = support.post("/claims", recent(receipt())).json()
    admin = Api(client, key_for(cafe, "admin"))
    no_reason = admin.post(f"/claims/{claim['id']}/reject")
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["loc"] == "reason"
    assert admin.post(f"/claims/{claim['id']}/reject", {"why": "x"}).status_code == 422
    assert admin.post("/claims/abc/confirm").status_code == 404
    assert admin.post("/claims/99999/confirm").status_code == 404
    assert admin.get("/claims", params={"status": "lost"}).status_code == 422
    assert admin.get(f"/claims/{claim['id']}").json()["status"] == "open"


def sign_in(client: TestClient, cafe: Engine, role: str) -> None:
    create_operator(cafe, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    token = csrf_of(client.get("/console/login").text)
    client.post("/console/login", data={"csrf": token, "program": "zerno",
                "email": f"{role}@zerno.example", "password": PASSWORD})  # fmt: skip


def test_the_console_queue_shows_each_claim_s_clock_and_audits_decisions(
    client: TestClient, cafe: Engine
) -> None:
    late = file(cafe)  # filed at NOW, long ago: its 24 hours are long past
    sign_in(client, cafe, "admin")
    page = client.get("/console/zerno/claims")
    assert page.status_code == 200
    assert f'id="claim-{late["id"]}" class="late"' in page.text
    assert "late by" in page.text
    assert "просрочена на" in client.get("/console/zerno/claims?lang=ru").text
    token = csrf_of(page.text)
    base = "/console/zerno/claims"
    assert client.post(f"{base}/{late['id']}/confirm", data={"csrf": "forged"}).status_code == 403
    done = client.post(f"{base}/{late['id']}/confirm", data={"csrf": token, "reason": "found it"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert (
        client.post(f"{base}/{late['id']}/reject", data={"csrf": token, "reason": "no"}).status_code
        == 409
    )
    shown = client.get(base).text
    assert f'id="decided-{late["id"]}"' in shown
    assert f'id="claim-{late["id"]}"' not in shown
    audit = [(e["action"], e["target"], e["details"]) for e in audit_entries(cafe, "zerno")
             if e["action"].startswith("claim.")]  # fmt: skip
    assert audit == [("claim.confirm", f"claim:{late['id']}",
                      {"status": "confirmed", "reason": "found it"})]  # fmt: skip


def test_the_console_files_a_claim_with_time_left_on_its_clock(
    client: TestClient, cafe: Engine
) -> None:
    sign_in(client, cafe, "support")
    page = client.get("/console/zerno/claims")
    assert 'id="file-claim"' in page.text
    assert 'id="confirm-' not in page.text  # support files; the partner decides
    at = (datetime.now(UTC) - HOUR).strftime("%Y-%m-%dT%H:%M")
    form = {"csrf": csrf_of(page.text), "receipt_id": "R-77", "location": "kiosk",
            "member": "card:200001", "at": at, "lines": "TEA-400 1 150.00\nCRS-1 2",
            "note": "photo of the receipt in the ticket"}  # fmt: skip
    done = client.post("/console/zerno/claims", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    shown = client.get("/console/zerno/claims").text
    assert "R-77" in shown
    assert "23 h 59 min left" in shown or "23 h 58 min left" in shown
    refused = client.post("/console/zerno/claims", data={**form, "lines": "TEA-400"})
    assert refused.status_code == 422
    assert "row 1: write the SKU, the quantity and the price" in refused.text
    audit = [e for e in audit_entries(cafe, "zerno") if e["action"] == "claim.file"]
    assert [e["details"] for e in audit] == [{"receipt_id": "R-77", "location": "kiosk"}]


def test_a_partner_s_operator_sees_and_decides_its_own_claims_only(
    client: TestClient, cafe: Engine
) -> None:
    at_kiosk = file(cafe)
    at_shop = file(cafe, receipt(location="shop", lines=[{"sku": "CRS-1", "qty": 1}]))
    create_operator(cafe, "zerno", "lavka@zerno.example", PASSWORD, "partner", NOW,
                    partner="lavka")  # fmt: skip
    token = csrf_of(client.get("/console/login").text)
    client.post("/console/login", data={"csrf": token, "program": "zerno",
                "email": "lavka@zerno.example", "password": PASSWORD})  # fmt: skip
    page = client.get("/console/zerno/claims")
    assert page.status_code == 200
    assert f'id="claim-{at_shop["id"]}"' in page.text
    assert f'id="claim-{at_kiosk["id"]}"' not in page.text
    assert 'id="file-claim"' not in page.text  # the partner decides; the service centre files
    token = csrf_of(page.text)
    base = "/console/zerno/claims"
    other = client.post(f"{base}/{at_kiosk['id']}/reject", data={"csrf": token, "reason": "x"})
    assert other.status_code == 404
    own = client.post(f"{base}/{at_shop['id']}/reject", data={"csrf": token, "reason": "no"},
                      follow_redirects=False)  # fmt: skip
    assert own.status_code == 303
    audit = [(e["action"], e["target"]) for e in audit_entries(cafe, "zerno")
             if e["action"].startswith("claim.")]  # fmt: skip
    assert audit == [("claim.reject", f"claim:{at_shop['id']}")]
