"""The coalition over HTTP, on SQLite and PostgreSQL: keys bound to a partner see and
sell at their own partner only (another partner is a 404), a prepaid block bought and
replayed, statements closed by an admin and read by the partner, as JSON, CSV (no cell a
formula) and PDF (read back as text)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.mechanics.coalition import handlers
from kopilka.operators.keys import create_key
from kopilka.platform.http.app import create_app
from tests.api.conftest import Api, serving_engine
from tests.coalition.test_settlement import alliance

__all__ = ["alliance"]
MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(alliance: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(serving_engine(alliance))) as test_client:
        yield test_client


def api(client: TestClient, engine: Engine, role: str, **kw: Any) -> Api:
    return Api(client, create_key(engine, "alliance", role, now=MARCH, **kw)[0], "alliance")


def receipt(receipt_id: str, location: str, **extra: Any) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "location": location, "member": "card:100001",
            "at": "2026-03-10T12:00:00+03:00",
            "lines": [{"sku": "ITEM", "qty": 1, "price": "1000.00"}], **extra}  # fmt: skip


def test_a_partner_key_sells_and_sees_at_its_own_partner_only(
    client: TestClient, alliance: Engine
) -> None:
    cafe = api(client, alliance, "partner", partner="cafe")
    sold = cafe.post("/purchases", receipt("C-1", "cafe-1"))
    assert sold.status_code == 201, sold.text
    elsewhere = cafe.post("/purchases", receipt("C-2", "books-1"))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden")
    nowhere = cafe.post("/purchases", {k: v for k, v in receipt("C-3", "x").items()
                                       if k != "location"})  # fmt: skip
    assert nowhere.status_code == 422
    assert nowhere.json()["errors"][0]["loc"] == "location"
    fuel = process_purchase(alliance, "alliance", receipt("F-1", "fuel-1", redeem="10"),
                            now=MARCH, actor="test").answer  # fmt: skip
    other = cafe.get(f"/purchases/{fuel['purchase_id']}")
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    refund = cafe.post(f"/purchases/{fuel['purchase_id']}/refunds", {"refund_id": "1"})
    assert refund.status_code == 404
    assert cafe.get(f"/purchases/{sold.json()['purchase_id']}").status_code == 200
    seen = cafe.get("/partners/cafe/purchases").json()
    assert [item["receipt_id"] for item in seen["items"]] == ["C-1"]
    assert cafe.get("/partners/fuel/purchases").status_code == 404
    assert cafe.get("/partners/fuel").status_code == 404
    assert cafe.get("/partners/nobody").status_code == 404
    unbound = api(client, alliance, "partner")
    assert unbound.get("/partners/cafe").status_code == 403


def test_keys_are_bound_to_a_partner_of_the_program(client: TestClient, alliance: Engine) -> None:
    admin = api(client, alliance, "admin")
    made = admin.post("/keys", {"role": "partner", "partner": "books"})
    assert (made.status_code, made.json()["partner"]) == (201, "books")
    for body, loc in (({"role": "partner", "partner": "nobody"}, "partner"),
                      ({"role": "pos", "partner": "books", "location": "books-1"}, "partner"),
                      ({"role": "partner", "partner": "books", "location": "cafe-1"},
                       "location")):  # fmt: skip
        refused = admin.post("/keys", body)
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["loc"] == loc


def test_a_block_a_statement_and_its_files(client: TestClient, alliance: Engine) -> None:
    admin = api(client, alliance, "admin")
    books = api(client, alliance, "partner", partner="books")
    block = {"points": "60.00", "price": "57.00", "reference": "PAY-7"}
    first = admin.post("/partners/books/blocks", block)
    assert first.status_code == 201, first.text
    assert admin.post("/partners/books/blocks", block).status_code == 200
    conflict = admin.post("/partners/books/blocks", {**block, "price": "90.00"})
    assert conflict.json()["code"] == "idempotency_conflict"
    assert books.post("/partners/books/blocks", block).status_code == 403
    assert books.post("/purchases", receipt("B-1", "books-1")).status_code == 201
    exhausted = books.post("/purchases", receipt("B-2", "books-1"))
    assert (exhausted.status_code, exhausted.json()["code"]) == (422, "prepaid_points_exhausted")
    assert books.get("/partners/books").json()["prepaid"]["left"] == "10.00"
    handlers.add_correction(alliance, "alliance", "books",
                            {"amount": "-5.00", "note": "=HYPERLINK(\"http://x\")"},
                            actor="test", now=MARCH)  # fmt: skip
    draft = books.post("/partners/books/statements/draft",
                       {"from": "2026-03-01", "until": "2026-03-31"})  # fmt: skip
    assert (draft.status_code, draft.json()["status"]) == (200, "draft")
    too_soon = admin.post("/partners/books/statements", {"from": "2026-03-01",
                                                         "until": "2099-03-31"})  # fmt: skip
    assert too_soon.json()["code"] == "conflict"
    closed = admin.post("/partners/books/statements", {"from": "2026-01-01",
                                                       "until": "2026-02-28"})  # fmt: skip
    assert closed.status_code == 201, closed.text
    listed = books.get("/partners/books/statements").json()["items"]
    assert [item["id"] for item in listed] == [closed.json()["id"]]
    sid = closed.json()["id"]
    assert books.get(f"/partners/books/statements/{sid}").json() == closed.json()
    assert (
        api(client, alliance, "partner", partner="cafe")
        .get(f"/partners/books/statements/{sid}")
        .status_code
        == 404
    )
    assert admin.get(f"/partners/cafe/statements/{sid}").status_code == 404


def test_the_statement_s_csv_and_pdf(client: TestClient, alliance: Engine) -> None:
    admin = api(client, alliance, "admin")
    process_purchase(alliance, "alliance", receipt("C-1", "cafe-1"), now=MARCH, actor="t")
    handlers.add_correction(alliance, "alliance", "cafe",
                            {"amount": "-5.00", "note": "=HYPERLINK(\"http://x\")"},
                            actor="test", now=MARCH)  # fmt: skip
    march = {"from": "2026-03-01", "until": "2026-03-31"}
    closed = handlers.close_statement(alliance, "alliance", "cafe", march, actor="test",
                                      now=datetime(2026, 4, 2, tzinfo=UTC))  # fmt: skip
    got = admin.get(f"/partners/cafe/statements/{closed['id']}/csv")
    assert got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(got.text)))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    lines = {row[0]: row[1:] for row in rows if len(row) == 3}
    assert lines["points issued, funded by the partner"] == ["50.00", ""]
    assert lines['correction: =HYPERLINK("http://x")'] == ["", "5.00"]
    assert lines["closing position"] == ["1045.00", ""]
    pdf = admin.get(f"/partners/cafe/statements/{closed['id']}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("Settlement statement", "cafe", "Альянс", "2026-03-01", "1045.00",
                     "points issued, funded by the partner"):  # fmt: skip
        assert expected in text, expected
