"""The engagement mechanics in the console and on the member's page: the Engagement page
lists each mechanic's page; the stamp cards', challenges' and bounce-back pages show
their figures; the console's member profile and the member's own page (in Russian) show
the member's cards, challenges and badges — and another program's pages are 404."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members.links import member_link
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.web.conftest import OTHER, SECRET, console_app, sign_in, stock

STAMPS = [
    {
        "code": "coffee",
        "name": "Кофейная карта",
        "stamps": 6,
        "per": "unit",
        "categories": ["coffee"],
        "reward": {"points": "100", "note": "кофе в подарок"},
    }
]
CHALLENGES = [
    {
        "code": "three-visits",
        "name": "3 визита в месяц",
        "goal": {"visits": 3},
        "period": "month",
        "reward": {"points": "200", "badge": "regular"},
    }
]
BADGES = [{"code": "regular", "name": "Завсегдатай"}]
OFFERS = [{"code": "next-20", "name": "Скидка на следующую покупку", "coupon": "next-20",
           "min_total": "300.00"}]  # fmt: skip


@pytest.fixture
def cafe(engine: Engine) -> Engine:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document |= {"stamp_cards": STAMPS, "challenges": CHALLENGES, "badges": BADGES,
                 "bounce_back": OFFERS}  # fmt: skip
    apply_program(engine, copy.deepcopy(document), actor="test", now=NOW)
    coupons.create_campaign(
        engine,
        "zerno",
        {"code": "next-20", "kind": "unique", "effect": {"percent": 20}},
        actor="t",
        now=NOW,
    )
    stock(engine)  # Анна (card 100001) with a purchase, operators, another program
    for n in range(3):
        body = {
            "receipt_id": f"E-{n}",
            "location": "kiosk",
            "member": "card:100001",
            "lines": [{"sku": "CAP-300", "qty": 2}],
        }
        process_purchase(engine, "zerno", body, now=NOW, actor="pos:test")
    return engine


@pytest.fixture
def client(cafe: Engine) -> Iterator[TestClient]:
    with TestClient(console_app(cafe), base_url="http://testserver") as client:
        yield client


def test_the_engagement_page_lists_each_mechanic_s_page(client: TestClient) -> None:
    sign_in(client, "analyst")
    page = client.get("/console/zerno/engagement")
    assert page.status_code == 200
    for path in ("stamps", "challenges", "bounce-back", "actions", "referrals"):
        assert f'href="/console/zerno/{path}"' in page.text
    assert 'href="/console/zerno/engagement"' in client.get("/console/zerno/").text


def test_each_mechanic_s_page_shows_its_figures(client: TestClient) -> None:
    sign_in(client, "analyst")
    stamps = client.get("/console/zerno/stamps")
    # one member, 6 stamps: one reward of 100 points, the card at 0
    assert "Кофейная карта" in stamps.text
    assert "<td>6</td><td>1</td><td>100.00</td>" in stamps.text.replace("\n", "")
    challenges = client.get("/console/zerno/challenges")
    assert "3 визита в месяц" in challenges.text
    assert "Завсегдатай" in challenges.text
    bounce = client.get("/console/zerno/bounce-back")
    assert "<td>next-20</td><td>3</td><td>0</td>" in bounce.text.replace("\n", "")


def test_the_console_s_member_profile_shows_cards_challenges_and_badges(
    client: TestClient,
) -> None:
    sign_in(client, "support")
    page = client.get("/console/zerno/members/1")  # Анна, the first member registered
    assert page.status_code == 200
    assert 'id="stamps-coffee"' in page.text
    assert 'id="challenge-three-visits"' in page.text
    assert 'id="badge-regular"' in page.text


def test_the_member_s_page_shows_them_in_russian(client: TestClient, cafe: Engine) -> None:
    url = member_link(cafe, "zerno", "card:100001", base_url="http://testserver",
                      secret=SECRET, now=NOW, days=None)  # fmt: skip
    page = client.get(url.removeprefix("http://testserver") + "?lang=ru")
    assert page.status_code == 200
    assert "Карточки со штампами" in page.text
    assert "Кофейная карта" in page.text
    assert "Завсегдатай" in page.text
    assert "Задания" in page.text


@pytest.mark.parametrize("path", ["stamps", "challenges", "bounce-back", "engagement"])
def test_another_program_s_operator_does_not_see_them(client: TestClient, path: str) -> None:
    sign_in(client, "admin")  # zerno's admin
    assert client.get(f"/console/{OTHER}/{path}").status_code == 404


def test_the_referrals_page_with_members_cards_is_not_a_marketer_s(client: TestClient) -> None:
    sign_in(client, "marketer")
    assert client.get("/console/zerno/referrals").status_code == 403
    assert client.get("/console/zerno/stamps").status_code == 200  # figures only: anyone
