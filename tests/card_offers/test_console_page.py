"""Card-linked offers' console page: the offers' figures with a chart drawn as SVG, the
feed's matching, and the review queue whose decision (a form) becomes a rule — read and
decided over HTTP on both databases, then in a real browser (Debian's Chromium) with no
error in the page and a screenshot kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.mechanics.card_offers import handlers
from kopilka.operators.handlers import create_operator
from tests.card_offers.test_feed_api import AUTH, CAFE, WEEKDAYS
from tests.conftest import snap
from tests.databases import Templates
from tests.store.conftest import NOW
from tests.web.conftest import PASSWORD, console_app, csrf_of, served, stocked_sqlite

NOISY = {**AUTH, "transaction_id": "U-1", "merchant_id": None, "descriptor": "CAFE-ONE KIOSK 7"}


def stock_offers(engine: Engine) -> None:
    """The café's catalog, an offer, a card that bought twice, one purchase unmatched."""
    handlers.put_merchant(engine, "zerno", "cafe", CAFE, now=NOW)
    handlers.put_offer(engine, "zerno", "weekdays", {**WEEKDAYS, "activation_required": False},
                       actor="test", now=NOW)  # fmt: skip
    card = {"scheme": "visa", "first_six": "427600", "last_four": "1234"}
    handlers.put_card(engine, "zerno", "tok-anna", card, now=NOW)
    moment = datetime.now(UTC)  # the purchases are an hour from now (test_feed_api's SOON)
    handlers.take_message(engine, "zerno", AUTH, now=moment)
    handlers.take_message(engine, "zerno", {**AUTH, "transaction_id": "C-1", "kind": "clearing",
                                            "original": "A-1"}, now=moment)  # fmt: skip
    handlers.take_message(engine, "zerno", NOISY, now=moment)


@pytest.fixture
def console(zerno_engine: Engine) -> Iterator[TestClient]:
    for role in ("admin", "analyst", "marketer"):
        create_operator(zerno_engine, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    stock_offers(zerno_engine)
    with TestClient(console_app(zerno_engine), base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, role: str) -> None:
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={
        "csrf": token, "program": "zerno", "email": f"{role}@zerno.example",
        "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text


def test_the_page_shows_the_figures_and_a_decision_becomes_a_rule(console: TestClient) -> None:
    sign_in(console, "admin")
    page = console.get("/console/zerno/card-offers")
    assert page.status_code == 200
    for text in ('id="offer-weekdays"', ">100.00<",  # confirmed cashback: 10 % of 1000.00
                 'id="cashback-chart"', 'id="review-1"', "CAFE-ONE KIOSK 7", "cafe-1"):  # fmt: skip
        assert text in page.text, text
    russian = console.get("/console/zerno/card-offers", headers={"Accept-Language": "ru"})
    assert "Очередь проверки" in russian.text
    token = csrf_of(page.text)
    form = {"csrf": token, "location": "cafe-1"}
    decided = console.post("/console/zerno/card-offers/reviews/1", data=form,
                           follow_redirects=False)  # fmt: skip
    assert decided.status_code == 303, decided.text
    after = console.get(decided.headers["location"])
    assert 'id="done"' in after.text
    assert 'id="review-1"' not in after.text
    again = console.post("/console/zerno/card-offers/reviews/1",
                         data={"csrf": token, "location": "cafe-1"})  # fmt: skip
    assert again.status_code == 409
    assert 'id="problem"' in again.text


def test_an_analyst_reads_but_may_not_decide_and_a_marketer_sees_nothing(
    console: TestClient,
) -> None:
    sign_in(console, "analyst")
    page = console.get("/console/zerno/card-offers")
    assert page.status_code == 200
    assert 'id="match-1"' not in page.text
    token = csrf_of(page.text)
    refused = console.post("/console/zerno/card-offers/reviews/1",
                           data={"csrf": token, "location": "cafe-1"})  # fmt: skip
    assert refused.status_code == 403
    console.cookies.clear()
    sign_in(console, "marketer")
    assert console.get("/console/zerno/card-offers").status_code == 403


def test_in_a_browser_the_chart_shows_and_a_review_is_decided(
    browser: Any, templates: Templates, tmp_path: Any
) -> None:
    database = stocked_sqlite(templates, tmp_path / "kopilka.sqlite3")
    stock_offers(database)
    with served(console_app(database)) as url:
        context = browser.new_context(base_url=url, locale="en-US")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto("/console/login")
        page.fill("input[name=program]", "zerno")
        page.fill("input[name=email]", "admin@zerno.example")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/zerno/")
        page.goto("/console/zerno/card-offers")
        bars = page.locator("#cashback-chart rect")
        assert bars.count() == 3  # paid, confirmed, pending
        assert page.locator("#cashback-chart").bounding_box()["width"] > 200
        snap(page, "card-offers")
        page.click("#match-1")
        page.wait_for_url("**/card-offers?done=decided")
        assert page.locator("#reviews").inner_text().count("No purchase waits") == 1
        snap(page, "card-offers-decided")
        context.close()
    database.dispose()
    assert errors == [], errors
