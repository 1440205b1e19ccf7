"""The coalition's console pages: an admin's list of partners, a partner's own page with
its position, statements (CSV, PDF) and its customers' purchases; a partner operator
lands there, sees nothing of the program's and another partner's page is a 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import InvalidInput
from kopilka.mechanics.coalition import handlers
from kopilka.operators.handlers import create_operator
from tests.coalition.test_coalition_api import receipt
from tests.coalition.test_settlement import alliance
from tests.web.conftest import PASSWORD, console_app, csrf_of

__all__ = ["alliance"]
MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def console(alliance: Engine) -> Iterator[TestClient]:
    create_operator(alliance, "alliance", "admin@alliance.example", PASSWORD, "admin", MARCH)
    create_operator(alliance, "alliance", "cafe@alliance.example", PASSWORD, "partner", MARCH,
                    partner="cafe")  # fmt: skip
    process_purchase(alliance, "alliance", receipt("C-1", "cafe-1"), now=MARCH, actor="t")
    process_purchase(alliance, "alliance", receipt("F-1", "fuel-1", redeem="10"), now=MARCH,
                     actor="t")  # fmt: skip
    handlers.close_statement(alliance, "alliance", "cafe",
                             {"from": "2026-03-01", "until": "2026-03-31"}, actor="t",
                             now=datetime(2026, 4, 2, tzinfo=UTC))  # fmt: skip
    with TestClient(console_app(alliance), base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, who: str) -> str:
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={
        "csrf": token, "program": "alliance", "email": f"{who}@alliance.example",
        "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_a_partner_operator_sees_its_own_partner_only(
    console: TestClient, alliance: Engine
) -> None:
    assert sign_in(console, "cafe").endswith("/console/alliance/partners/cafe")
    page = console.get("/console/alliance/partners/cafe")
    assert page.status_code == 200
    assert 'id="statement-' in page.text
    assert ">C-1<" in page.text
    assert ">F-1<" not in page.text  # the fuel station's customer is not the café's
    assert "/console/alliance/members" not in page.text  # no link to the program's pages
    assert 'href="/console/alliance/claims"' in page.text  # its claims queue, its own only
    assert console.get("/console/alliance/claims").status_code == 200
    for path in ("/console/alliance/partners/fuel", "/console/alliance/partners/nobody"):
        assert console.get(path).status_code == 404
    for path in ("/console/alliance/", "/console/alliance/members", "/console/alliance/partners",
                 "/console/alliance/rules", "/console/alliance/engagement"):  # fmt: skip
        assert console.get(path).status_code == 403, path
    statement = handlers.list_statements(alliance, "alliance", "cafe")[0]
    files = f"/console/alliance/partners/cafe/statements/{statement['id']}"
    assert console.get(files + "/csv").text.startswith("program,Альянс")
    assert console.get(files + "/pdf").content.startswith(b"%PDF")
    assert console.get(files + "/xls").status_code == 404


def test_an_admin_sees_every_partner_in_russian(console: TestClient) -> None:
    sign_in(console, "admin")
    page = console.get("/console/alliance/partners", headers={"Accept-Language": "ru"})
    assert page.status_code == 200
    for text in ("Партнёры", "Кофейня «Зерно»", "предоплата блоками", "только списывает",
                 'id="partner-shoes"'):  # fmt: skip
        assert text in page.text, text
    assert console.get("/console/alliance/partners/fuel").status_code == 200


def test_a_partner_operator_names_a_partner_of_the_program(alliance: Engine) -> None:
    for role, partner, field in (("partner", None, "partner"), ("support", "cafe", "partner"),
                                 ("partner", "nobody", "partner")):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            create_operator(alliance, "alliance", f"{role}-{partner}@x.example", PASSWORD, role,
                            MARCH, partner=partner)  # fmt: skip
        assert refused.value.problems[0].loc == field
