"""The console's pages through the real app (TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from kopilka.members.handlers import read_member
from kopilka.operators.handlers import adjust_points, authenticate
from kopilka.operators.sessions import COOKIE
from tests.store.conftest import NOW
from tests.web.conftest import OTHER, PASSWORD, csrf_of, other_ids, sign_in


def test_a_page_asks_for_sign_in_first(client):
    answer = client.get("/console/zerno/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?program=zerno"


def test_signing_in_sets_an_httponly_lax_cookie_and_opens_the_dashboard(client):
    answer = sign_in(client)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie
    page = client.get("/console/zerno/")
    assert page.status_code == 200
    assert 'id="points-chart"' in page.text
    assert page.text.count('id="top-rules"') + page.text.count("No rule gave points") == 1
    title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title  # plain text: the page's sections stay in its body


def test_a_wrong_password_is_refused_and_ten_in_a_row_are_slowed_down(client):
    assert sign_in(client, password="wrong password").status_code == 401
    for _ in range(9):
        sign_in(client, password="wrong password")
    assert sign_in(client).status_code == 429  # even the right one, for now


def test_a_post_without_the_session_csrf_token_is_refused(client):
    sign_in(client)
    answer = client.post("/console/zerno/members/1/adjustments",
                         data={"csrf": "forged", "points": "5", "reason": "x"})  # fmt: skip
    assert answer.status_code == 403
    assert 'id="available">14.50<' in client.get("/console/zerno/members/1").text  # as before


def test_a_post_from_another_site_is_refused(client):
    sign_in(client)
    token = csrf_of(client.get("/console/zerno/members/1").text)
    answer = client.post("/console/zerno/members/1/adjustments",
                         data={"csrf": token, "points": "5", "reason": "x"},
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert answer.status_code == 403


def test_a_tampered_cookie_is_no_session(client):
    sign_in(client)
    client.cookies.set(COOKIE, client.cookies[COOKIE][:-2] + "xx", path="/console")
    assert client.get("/console/zerno/", follow_redirects=False).status_code == 303


def test_another_programs_pages_are_not_found_and_roles_are_kept(client):
    sign_in(client, "marketer")
    assert client.get(f"/console/{OTHER}/").status_code == 404  # a program that exists
    assert client.get("/console/zerno/").status_code == 200
    assert client.get("/console/zerno/members?q=1").status_code == 403
    assert client.get("/console/zerno/audit").status_code == 403


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", ["/", "/members?q=Olga", "/members/{member}", "/purchases/{purchase}", "/audit",
             "/rules", "/coupons", "/keys"])  # fmt: skip
def test_no_page_of_another_program_opens_for_an_admin(client, stocked, page):
    member, purchase = other_ids(stocked)
    sign_in(client, "admin")
    path = page.format(member=member, purchase=purchase)
    assert client.get(f"/console/{OTHER}{path}").status_code == 404


def test_another_programs_members_and_purchases_are_not_found_by_their_ids(client, stocked):
    member, purchase = other_ids(stocked)
    sign_in(client, "admin")
    assert client.get(f"/console/{OTHER}/members/{member}").status_code == 404
    assert client.get(f"/console/zerno/members/{member}").status_code == 404
    assert client.get(f"/console/zerno/purchases/{purchase}").status_code == 404
    found = client.get("/console/zerno/members?q=Olga").text
    assert "Nobody found" in found
    assert "900001" not in found
    token = csrf_of(client.get("/console/zerno/members/1").text)
    adjusted = client.post(f"/console/zerno/members/{member}/adjustments",
                           data={"csrf": token, "points": "5", "reason": "x"})  # fmt: skip
    assert adjusted.status_code == 404
    blocked = client.post(f"/console/zerno/members/{member}/status",
                          data={"csrf": token, "status": "blocked"})  # fmt: skip
    assert blocked.status_code == 404
    assert read_member(stocked, OTHER, str(member), now=NOW)["status"] == "active"
    # the other program's own admin does see them
    client.cookies.clear()
    login = csrf_of(client.get("/console/login").text)
    client.post("/console/login", data={"csrf": login, "program": OTHER, "password": PASSWORD,
                                        "email": "admin@north.example"})  # fmt: skip
    assert "Olga" in client.get(f"/console/{OTHER}/members/{member}").text
    assert client.get(f"/console/{OTHER}/purchases/{purchase}").status_code == 200
    assert client.get("/console/zerno/members/1").status_code == 404


def test_an_analyst_reads_a_member_but_can_not_adjust(client):
    sign_in(client, "analyst")
    page = client.get("/console/zerno/members/1")
    assert page.status_code == 200
    assert 'id="adjust"' not in page.text
    form = {"csrf": csrf_of(page.text), "points": "5", "reason": "x"}
    answer = client.post("/console/zerno/members/1/adjustments", data=form)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/console/zerno/members/999", "/console/zerno/members/abc", "/console/zerno/members/1%00",
     "/console/zerno/purchases/999", "/console/zerno/purchases/-1",
     "/console/zerno/members/99999999999999999999"],
)  # fmt: skip
def test_bad_references_are_404_pages_not_errors(client, path):
    sign_in(client)
    assert client.get(path).status_code == 404


def test_an_adjustment_without_a_reason_shows_the_problem_in_the_form(client):
    sign_in(client)
    token = csrf_of(client.get("/console/zerno/members/1").text)
    answer = client.post("/console/zerno/members/1/adjustments",
                         data={"csrf": token, "points": "abc", "reason": ""})  # fmt: skip
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text


@pytest.mark.parametrize("points", ["1_000", "1e3", "\u0663", "5..0"])
def test_points_written_oddly_are_refused(client, points):
    sign_in(client)
    token = csrf_of(client.get("/console/zerno/members/1").text)
    answer = client.post("/console/zerno/members/1/adjustments",
                         data={"csrf": token, "points": points, "reason": "a test"})  # fmt: skip
    assert answer.status_code == 422
    assert "is not a number of points" in answer.text


def test_an_adjustment_is_made_and_shows_in_the_audit_log(client):
    sign_in(client, "support")
    token = csrf_of(client.get("/console/zerno/members/1").text)
    form = {"csrf": token, "points": "10,5", "reason": "<b>gift</b>"}
    answer = client.post("/console/zerno/members/1/adjustments", data=form)
    assert answer.status_code == 200  # followed to the profile
    assert "25.00" in answer.text  # 14.50 + 10.50
    audit = client.get("/console/zerno/audit").text
    assert "&lt;b&gt;gift&lt;/b&gt;" in audit
    assert "<b>gift</b>" not in audit


def test_the_explanation_is_a_fragment_for_htmx_and_a_page_otherwise(client):
    sign_in(client)
    fragment = client.get("/console/zerno/purchases/1", headers={"HX-Request": "true"}).text
    assert fragment.startswith('<div class="explain"')
    assert "card-5" in fragment
    assert "<html" in client.get("/console/zerno/purchases/1").text


def test_the_language_follows_the_browser_and_then_the_switch(client):
    page = client.get("/console/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Войти" in page.text
    assert "Sign in" in client.get("/console/login?lang=en").text
    # the switch is remembered over the browser's wish
    again = client.get("/console/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Sign in" in again.text


def test_signing_out_ends_the_session(client):
    sign_in(client)
    token = csrf_of(client.get("/console/zerno/").text)
    assert client.post("/console/logout", data={"csrf": token}).status_code == 200
    assert client.get("/console/zerno/", follow_redirects=False).status_code == 303


def test_a_copy_of_the_cookie_is_worth_nothing_after_signing_out(client):
    """The cookie is signed, so a copy taken before sign-out (a shared computer, a
    stolen cookie) would still pass its signature check: the server ends the session."""
    sign_in(client)
    copied = client.cookies.get(COOKIE)
    token = csrf_of(client.get("/console/zerno/").text)
    client.post("/console/logout", data={"csrf": token})
    client.cookies.clear()
    client.cookies.set(COOKIE, copied)
    assert client.get("/console/zerno/", follow_redirects=False).status_code == 303
    client.cookies.clear()
    sign_in(client)  # the same client signed in again does get the page
    assert client.get("/console/zerno/", follow_redirects=False).status_code == 200


def test_the_next_tier_says_what_is_missing_in_money(client):
    sign_in(client, "support")
    page = client.get("/console/zerno/members/1").text
    found = re.search(r'<dd id="next-tier">([^<]*)</dd>', page)
    assert found
    # Анна's purchase was a tea and a croissant: VIP needs 150,000.00 of spend in all
    assert found.group(1) == "VIP · RUB149,710.00 more to spend"  # money, not points
    russian = client.get("/console/zerno/members/1?lang=ru").text
    assert "потратить ещё 149\xa0710,00\xa0₽" in russian


def test_a_search_too_long_is_a_page_naming_the_limit(client):
    sign_in(client, "support")
    answer = client.get("/console/zerno/members", params={"q": "7" * 201})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "at most 200 characters" in answer.text
    login = client.get("/console/login", params={"program": "x" * 5000})
    assert login.status_code == 200


def test_the_audit_log_pages_and_filters_by_target(client, stocked):
    sign_in(client, "admin")  # audited first: the adjustments are the newest 105 entries
    admin = authenticate(stocked, "zerno", "admin@zerno.example", PASSWORD, NOW)
    assert admin is not None
    for n in range(1, 106):  # 105 adjustments, each audited: over a page of 100
        adjust_points(stocked, admin, "card:100002" if n % 2 else "1", "1", f"gift {n}", NOW)
    first = client.get("/console/zerno/audit").text
    assert first.count('data-action="member.adjustment"') == 100
    assert "gift 105" in first
    assert "gift 5<" not in first
    older = re.search(r'href="([^"]+)" id="audit-older"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert "gift 5<" in second
    assert "gift 105" not in second
    assert 'id="audit-newest"' in second
    boris = client.get("/console/zerno/audit", params={"target": "member:2"}).text
    assert boris.count('data-action="member.adjustment"') == 53
    assert "gift 2<" not in boris  # Анна's
    assert 'id="audit-older"' not in boris


def test_a_members_history_pages(client, stocked):
    admin = authenticate(stocked, "zerno", "admin@zerno.example", PASSWORD, NOW)
    assert admin is not None
    for n in range(1, 56):
        adjust_points(stocked, admin, "1", "1", f"gift {n}", NOW)
    sign_in(client, "support")
    first = client.get("/console/zerno/members/1").text
    assert "gift 55" in first
    assert "gift 5<" not in first
    older = re.search(r'href="([^"]+)" id="history-older"', first)
    assert older
    second = client.get(older.group(1).split("#")[0]).text
    assert "gift 5<" in second
    assert "gift 55" not in second
    assert 'id="history-newest"' in second
    assert client.get("/console/zerno/members/1?before=abc").status_code == 200  # first page


def test_the_dashboard_says_which_purchases_the_rules_figures_come_from(client, monkeypatch):
    sign_in(client, "analyst")
    page = client.get("/console/zerno/").text
    assert re.search(r'id="rules-sample">From the 1 purchase of these days\.', page)
    from kopilka.operators import handlers as operators

    monkeypatch.setattr(operators, "TOP_RULES_SAMPLE", 1)  # a busy program: a sample
    page = client.get("/console/zerno/?lang=ru").text
    assert re.search(r'id="rules-sample">По 1 последним покупкам, начиная с ', page)


def test_the_language_switch_after_a_refused_form_leads_back_to_its_page(client):
    sign_in(client, "support")
    profile = "/console/zerno/members/1"
    token = csrf_of(client.get(profile).text)
    empty = {"csrf": token, "points": "5", "reason": ""}
    refused = client.post(profile + "/adjustments", data=empty,
                          headers={"Referer": "http://testserver" + profile})  # fmt: skip
    assert refused.status_code == 422
    switch = re.search(r'<a href="([^"]+)" hreflang="ru"', refused.text)
    assert switch
    assert switch.group(1) == profile + "?lang=ru"
    assert "Корректировка баланса" in client.get(switch.group(1)).text
    # a GET page keeps its query; a foreign Referer leads to the sign-in page, not away
    found = client.get("/console/zerno/members?q=Анна&lang=en").text
    assert 'href="/console/zerno/members?q=%D0%90%D0%BD%D0%BD%D0%B0&amp;lang=ru"' in found
    elsewhere = client.post(profile + "/adjustments", data=empty,
                            headers={"Referer": "https://evil.example/console/x"})  # fmt: skip
    assert 'href="/console/login?lang=ru"' in elsewhere.text


def test_console_pages_carry_the_security_headers(client):
    for answer in (client.get("/console/login"), sign_in(client),
                   client.get("/console/zerno/members/1")):  # fmt: skip
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


def test_behind_a_proxy_the_public_address_is_this_site(client, monkeypatch):
    sign_in(client)
    token = csrf_of(client.get("/console/zerno/members/1").text)
    form = {"csrf": token, "points": "5", "reason": "through the proxy"}
    public = {"Origin": "https://loyalty.example"}
    path = "/console/zerno/members/1/adjustments"
    assert client.post(path, data=form, headers=public).status_code == 403
    monkeypatch.setenv("KOPILKA_PUBLIC_URL", "https://loyalty.example")
    assert client.post(path, data=form, headers=public).status_code == 200
    assert client.post(path, data=form, headers={"Origin": "https://evil.example"}
                       ).status_code == 403  # fmt: skip


def test_a_field_too_long_refuses_the_form_and_saves_nothing(client):
    sign_in(client, "support")
    token = csrf_of(client.get("/console/zerno/members/1").text)
    answer = client.post("/console/zerno/members/1/adjustments",
                         data={"csrf": token, "points": "5", "reason": "x" * 1001})  # fmt: skip
    assert answer.status_code == 422
    assert "longer than 1,000 characters" in answer.text
    assert 'id="available">14.50<' in client.get("/console/zerno/members/1").text


def test_a_missing_member_is_a_translated_404_page_with_the_services_words(client):
    sign_in(client, "support")
    page = client.get("/console/zerno/members/99999?lang=ru")
    assert page.status_code == 404
    assert "Такой страницы нет, или она не этой программы." in page.text
    assert "99999" in page.text  # the service's own words, under it


@pytest.mark.parametrize(("points", "n", "russian"), [
    ("1", 1, "балл"), ("21", 21, "балл"), ("2", 2, "балла"), ("11", 11, "баллов"),
    ("5.00", 5, "баллов"), ("21.30", 2, "балла"), ("0.50", 2, "балла"), ("1.5", 2, "балла"),
])  # fmt: skip
def test_points_take_the_plural_form_their_number_asks_for(points, n, russian):
    from kopilka.members import page as member_page
    from kopilka.platform.console import i18n

    assert i18n.plural_n(points) == n
    assert member_page.translations("ru").ngettext("point", "points", n) == russian
