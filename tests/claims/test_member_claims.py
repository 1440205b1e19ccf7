"""A member files their own claim from their personal page (/m/{token}/claim), on both
databases: the link names the member, the form never does; a bad form comes back with
its problems; a member waits for answers before filing more than a few."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.mechanics.claims.handlers import list_claims
from kopilka.mechanics.claims.model import MEMBER_OPEN_LIMIT
from kopilka.members.handlers import register_member
from kopilka.members.links import member_link
from tests.api.conftest import serving_engine
from tests.claims.conftest import CARD, HOUR
from tests.store.conftest import NOW
from tests.web.conftest import SECRET, console_app


@pytest.fixture
def client(cafe: Engine) -> Iterator[TestClient]:
    with TestClient(console_app(serving_engine(cafe)), base_url="http://testserver") as c:
        yield c


def page_of(cafe: Engine, card: str = CARD) -> str:
    """The member's personal page's path."""
    url = member_link(cafe, "zerno", f"card:{card}", base_url="http://testserver",
                      secret=SECRET, now=datetime.now(UTC))  # fmt: skip
    return "/m/" + url.rsplit("/m/", 1)[1]


def form(receipt_id: str = "R-900", **more: str) -> dict[str, str]:
    at = (datetime.now(UTC) - HOUR).strftime("%Y-%m-%dT%H:%M")
    return {"receipt_id": receipt_id, "location": "kiosk", "at": at,
            "lines": "TEA-400 1 150.00", "note": "the till was offline", **more}  # fmt: skip


def test_a_member_files_a_claim_from_their_page(client: TestClient, cafe: Engine) -> None:
    page = page_of(cafe)
    card = client.get(page)
    assert f'href="{page}/claim"' in card.text
    shown = client.get(f"{page}/claim")
    assert shown.status_code == 200
    assert "form-action 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["cache-control"] == "no-store"
    # a member named in the form is not the one filing: the link's member is
    filed = client.post(f"{page}/claim", data={**form(), "member": "card:100001"})
    assert filed.status_code == 201, filed.text
    assert 'id="filed"' in filed.text
    (claim,) = list_claims(cafe, "zerno", now=NOW)["items"]
    assert (claim["member"]["card"], claim["receipt_id"], claim["status"]) == (CARD, "R-900",
                                                                               "open")  # fmt: skip
    assert claim["filed_by"] == f"member:{claim['member']['id']}"
    assert "Покупка не принесла баллов?" in client.get(f"{page}/claim?lang=ru").text


def test_a_bad_form_comes_back_with_its_problems(client: TestClient, cafe: Engine) -> None:
    page = page_of(cafe)
    refused = client.post(f"{page}/claim", data=form(lines="TEA-400"))
    assert refused.status_code == 422
    assert "row 1: write the SKU, the quantity and the price" in refused.text
    future = (datetime.now(UTC) + 30 * HOUR).strftime("%Y-%m-%dT%H:%M")
    assert "is in the future" in client.post(f"{page}/claim", data=form(at=future)).text
    assert list_claims(cafe, "zerno", now=NOW)["items"] == []


def test_another_site_s_post_and_a_bad_link_file_nothing(client: TestClient, cafe: Engine) -> None:
    page = page_of(cafe)
    forged = client.post(f"{page}/claim", data=form(), headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert client.post("/m/not-a-token/claim", data=form()).status_code == 404
    assert list_claims(cafe, "zerno", now=NOW)["items"] == []


def test_a_member_waits_for_answers_before_filing_more(client: TestClient, cafe: Engine) -> None:
    register_member(cafe, "zerno", {"card": "200002"}, now=NOW)
    page = page_of(cafe)
    for n in range(MEMBER_OPEN_LIMIT):
        assert client.post(f"{page}/claim", data=form(f"R-{n}")).status_code == 201
    again = client.post(f"{page}/claim", data=form("R-0"))
    assert again.status_code == 201  # the same receipt again: its claim, not a new one
    more = client.post(f"{page}/claim", data=form("R-99"))
    assert more.status_code == 409
    assert f"at most {MEMBER_OPEN_LIMIT} at a time" in more.text
    other = client.post(f"{page_of(cafe, '200002')}/claim", data=form("R-99"))
    assert other.status_code == 201
