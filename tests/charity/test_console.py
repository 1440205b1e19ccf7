"""The console's charity page — the charities and the report with its CSV — and the
member's profile showing where their purchases round up to."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.operators import handlers as operators
from kopilka.operators.handlers import create_operator
from tests.charity.conftest import NOW, buy, give, join, round_up_to
from tests.web.conftest import CHEAP, PASSWORD, console_app, sign_in


@pytest.fixture
def console(cafe: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(operators, "_hasher", CHEAP)
    for role in ("admin", "analyst", "marketer"):
        create_operator(cafe, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    return TestClient(console_app(cafe), base_url="http://testserver")


def test_the_page_shows_the_charities_and_the_report_and_exports_it(
    console: TestClient, cafe: Engine
) -> None:
    join(cafe, "800001", points="50")
    give(cafe, "800001", "children", "12.34")
    sign_in(console, "analyst")
    page = console.get("/console/zerno/charity?period=month&from=2026-03-01&until=2026-03-31")
    assert page.status_code == 200, page.text
    assert "Фонд «Дети»" in page.text
    report = page.text.split('id="charity-report"')[1]
    assert "2026-03-01" in report
    assert "12.34" in report
    exported = console.get("/console/zerno/charity.csv?period=month&from=2026-03-01")
    assert exported.status_code == 200
    assert exported.text.splitlines()[1].startswith("2026-03-01,children,")
    wrong = console.get("/console/zerno/charity?period=fortnight")
    assert wrong.status_code == 422
    assert "fortnight" in wrong.text


def test_the_page_is_the_program_s_own(console: TestClient) -> None:
    assert console.get("/console/zerno/charity", follow_redirects=False).status_code == 303
    sign_in(console, "marketer")
    assert console.get("/console/zerno/charity").status_code == 200
    assert console.get("/console/north/charity").status_code == 404


def test_the_member_s_profile_says_where_their_purchases_round_up_to(
    console: TestClient, cafe: Engine
) -> None:
    member = join(cafe, "800002")
    round_up_to(cafe, "800002")
    buy(cafe, "800002", qty=1)
    sign_in(console, "admin")
    page = console.get(f"/console/zerno/members/{member}")
    assert page.status_code == 200, page.text
    section = page.text.split('id="charity"')[1].split("</section>")[0]
    assert "Фонд «Дети»" in section
    assert "0.50" in section
