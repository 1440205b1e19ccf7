"""Support actions, coupons and discounts, access keys in the console: through the real
app (TestClient), on SQLite and PostgreSQL — each action, its roles, CSRF, its audit row."""

from __future__ import annotations

import csv
import io
import re

import pytest
from babel.messages.extract import extract_from_file
from sqlalchemy import Engine

from kopilka.mechanics.coupons.handlers import (
    CHANNELS,
    code_page,
    create_batch,
    create_campaign,
    issue_coupon,
    read_coupon,
)
from kopilka.members.events import member_events
from kopilka.members.links import list_links, member_link
from kopilka.operators import keys
from kopilka.platform.console import i18n, routes
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES, ROOT
from tests.store.conftest import NOW
from tests.web.conftest import csrf_of, sign_in

MEMBER = "/console/zerno/members/1"
COUPONS = "/console/zerno/coupons"
KEYS = "/console/zerno/keys"


def with_coupons(engine: Engine) -> tuple[str, str]:
    """`spring` (unique, 3 codes): one issued to Анна by sms, one to Boris; `open` (public).
    Анна's code and Boris's."""
    spring = {"code": "spring", "kind": "unique", "name": "Spring", "effect": {"percent": 10}}
    public = {"code": "open", "kind": "public", "public_code": "OPEN10",
              "effect": {"percent": 10}}  # fmt: skip
    for campaign in (spring, public):
        create_campaign(engine, "zerno", campaign, actor="test", now=NOW)
    create_batch(engine, "zerno", "spring", {"count": 3}, actor="test", now=NOW)
    first, second = (item["code"] for item in code_page(engine, "zerno", "spring")["items"][:2])
    issue_coupon(engine, "zerno", first, {"member": "card:100001", "channel": "sms"}, now=NOW)
    issue_coupon(engine, "zerno", second, {"member": "card:100002", "channel": "sms"}, now=NOW)
    return first, second


@pytest.fixture
def codes(stocked: Engine) -> tuple[str, str]:
    return with_coupons(stocked)


def token(client, path: str = "/console/zerno/") -> str:
    return csrf_of(client.get(path).text)


def audit_rows(client) -> str:
    """The audit log's table, as an admin reads it."""
    sign_in(client, "admin")
    page: str = client.get("/console/zerno/audit").text
    return page[page.index('id="audit"') :]


# — block / unblock —


def test_support_blocks_and_unblocks_a_member_and_both_are_audited(client):
    sign_in(client, "support")
    answer = client.post(MEMBER + "/status", data={"csrf": token(client, MEMBER),
                                                   "status": "blocked"})  # fmt: skip
    assert answer.status_code == 200  # followed to the profile
    assert 'id="blocked"' in answer.text
    assert 'id="unblock"' in answer.text
    assert re.search(r'id="member-status">blocked<', answer.text)
    answer = client.post(MEMBER + "/status", data={"csrf": token(client, MEMBER),
                                                   "status": "active"})  # fmt: skip
    assert 'id="unblocked"' in answer.text
    assert re.search(r'id="member-status">active<', answer.text)
    audit = audit_rows(client)
    assert "member.block" in audit
    assert "member.unblock" in audit
    assert "member:1" in audit


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_only_admin_and_support_block(client, role):
    sign_in(client, role)
    answer = client.post(MEMBER + "/status", data={"csrf": token(client), "status": "blocked"})
    assert answer.status_code == 403
    if role == "analyst":
        assert 'id="block"' not in client.get(MEMBER).text


def test_blocking_needs_the_csrf_token_and_a_known_status(client):
    sign_in(client, "admin")
    forged = client.post(MEMBER + "/status", data={"csrf": "forged", "status": "blocked"})
    assert forged.status_code == 403
    odd = client.post(MEMBER + "/status", data={"csrf": token(client), "status": "erased"})
    assert odd.status_code == 422
    assert re.search(r'id="member-status">active<', client.get(MEMBER).text)
    nobody = client.post("/console/zerno/members/999/status",
                         data={"csrf": token(client), "status": "blocked"})  # fmt: skip
    assert nobody.status_code == 404


# — a member's personal page links —


def test_support_revokes_a_members_link_and_then_every_link_audited(client, stocked):
    made = [member_link(stocked, "zerno", "1", base_url="http://testserver", secret="s",
                        now=NOW, days=days) for days in (None, 30, 1)]  # fmt: skip
    assert len(made) == 3
    later = member_link(stocked, "zerno", "card:100002", base_url="http://testserver",
                        secret="s", now=NOW, days=None)  # fmt: skip
    assert later
    sign_in(client, "support")
    profile = client.get(MEMBER).text
    rows = re.findall(r'<tr data-link="([^"]+)">', profile)
    assert len(rows) == 3
    assert "no end date" in profile
    first = rows[0]
    answer = client.post(f"{MEMBER}/links/{first}/revoke", data={"csrf": csrf_of(profile)})
    assert answer.status_code == 200
    assert 'id="links-revoked"' in answer.text
    states = {link["id"]: link["revoked_at"] for link in list_links(stocked, "zerno", "1")["items"]}
    assert states[first] is not None
    assert sum(at is None for at in states.values()) == 2
    every = client.post(f"{MEMBER}/links/revoke", data={"csrf": csrf_of(answer.text)})
    assert every.status_code == 200
    assert 'id="revoke-all-links"' not in every.text  # none left to revoke
    assert all(link["revoked_at"] for link in list_links(stocked, "zerno", "1")["items"])
    boris = list_links(stocked, "zerno", "card:100002")["items"]
    assert boris[0]["revoked_at"] is None  # another member's link stays
    audit = audit_rows(client)
    assert "member.link.revoke" in audit
    assert "member.links.revoke" in audit
    assert "revoked: 2" in audit


def test_only_support_and_admin_revoke_links_and_another_members_link_is_not_found(client, stocked):
    member_link(stocked, "zerno", "card:100002", base_url="http://testserver", secret="s",
                now=NOW, days=None)  # fmt: skip
    [boris] = list_links(stocked, "zerno", "card:100002")["items"]
    sign_in(client, "analyst")
    page = client.get("/console/zerno/members/2").text
    assert boris["id"] in page
    assert 'id="revoke-all-links"' not in page
    assert client.post(f"/console/zerno/members/2/links/{boris['id']}/revoke",
                       data={"csrf": csrf_of(page)}).status_code == 403  # fmt: skip
    sign_in(client, "support")
    token = csrf_of(client.get(MEMBER).text)
    wrong = client.post(f"{MEMBER}/links/{boris['id']}/revoke", data={"csrf": token})
    assert wrong.status_code == 404  # Анна's profile, Boris's link
    forged = client.post(f"/console/zerno/members/2/links/{boris['id']}/revoke",
                         data={"csrf": "forged"})  # fmt: skip
    assert forged.status_code == 403
    assert list_links(stocked, "zerno", "card:100002")["items"][0]["revoked_at"] is None


# — resending a coupon —


def test_support_resends_a_members_coupon_by_another_channel_audited(client, stocked, codes):
    sign_in(client, "support")
    profile = client.get(MEMBER).text
    assert codes[0] in profile
    assert codes[1] not in profile  # Boris's
    answer = client.post(MEMBER + "/resend", data={"csrf": csrf_of(profile), "code": codes[0],
                                                   "channel": "email"})  # fmt: skip
    assert answer.status_code == 200
    assert "queued to be sent again by email" in answer.text
    coupon = read_coupon(stocked, "zerno", codes[0], now=NOW)
    assert (coupon["owner"], coupon["channel"]) == ("1", "email")
    # what a messaging integration reads: the first issue by SMS, then this resend by email
    sent = [e for e in member_events(stocked, "zerno", "1")["items"]
            if e["kind"] == "coupon.issued"]  # fmt: skip
    assert [(e["coupon"], e["channel"], e["resend"]) for e in sent] == [
        (codes[0], "email", True), (codes[0], "sms", False)]  # fmt: skip
    audit = audit_rows(client)
    assert "coupon.resend" in audit
    assert "channel: email" in audit


def test_a_coupon_not_the_members_is_not_resent(client, stocked, codes):
    sign_in(client, "support")
    answer = client.post(MEMBER + "/resend", data={"csrf": token(client), "code": codes[1],
                                                   "channel": "email"})  # fmt: skip
    assert answer.status_code == 404
    assert read_coupon(stocked, "zerno", codes[1], now=NOW)["owner"] == "2"


def test_a_resend_with_a_bad_channel_or_to_a_blocked_member_shows_the_problem(client, codes):
    sign_in(client, "support")
    bad = client.post(MEMBER + "/resend", data={"csrf": token(client), "code": codes[0],
                                                "channel": "pigeon"})  # fmt: skip
    assert bad.status_code == 409
    assert 'role="alert"' in bad.text
    client.post(MEMBER + "/status", data={"csrf": token(client), "status": "blocked"})
    blocked = client.post(MEMBER + "/resend", data={"csrf": token(client), "code": codes[0],
                                                    "channel": "sms"})  # fmt: skip
    assert blocked.status_code == 409
    assert "blocked" in blocked.text


def test_resending_needs_the_role_and_the_csrf_token(client, codes):
    sign_in(client, "analyst")
    form = {"csrf": token(client), "code": codes[0], "channel": "email"}
    assert client.post(MEMBER + "/resend", data=form).status_code == 403
    sign_in(client, "support")
    form = {"csrf": "forged", "code": codes[0], "channel": "email"}
    assert client.post(MEMBER + "/resend", data=form).status_code == 403
    assert "coupon.resend" not in audit_rows(client)


# — coupons and discounts —


@pytest.mark.usefixtures("codes")
def test_the_campaigns_are_listed_with_status_and_counts(client):
    sign_in(client, "analyst")
    page = client.get(COUPONS)
    assert page.status_code == 200
    listed = page.text[page.text.index('id="campaigns"') :]
    assert "/console/zerno/coupons/spring" in listed
    assert "/console/zerno/coupons/open" in listed
    campaign = client.get(COUPONS + "/spring").text
    assert re.search(r'id="codes-generated">3<', campaign)
    assert re.search(r'id="codes-issued">2<', campaign)
    assert 'id="generate"' not in campaign  # an analyst reads only
    assert 'id="export"' not in campaign
    assert client.get(COUPONS + "/nothing").status_code == 404


def test_the_programs_discounts_are_listed_read_only(client, stocked):
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["discounts"] = [{"code": "coffee-10", "name": "Coffee week", "percent": 10,
                              "when": {"categories": ["coffee"]}}]  # fmt: skip
    apply_program(stocked, document, actor="test", now=NOW)
    sign_in(client, "support")
    page = client.get(COUPONS).text
    listed = page[page.index('id="discounts"') :]
    assert "coffee-10" in listed
    assert "percent: 10" in listed
    assert "<form" not in listed


@pytest.mark.usefixtures("codes")
def test_a_marketer_generates_a_batch_and_it_is_audited(client):
    sign_in(client, "marketer")
    page = client.get(COUPONS + "/spring").text
    answer = client.post(COUPONS + "/spring/batches", data={"csrf": csrf_of(page),
                                                            "count": "5"})  # fmt: skip
    assert answer.status_code == 200
    assert 'id="made"' in answer.text
    assert re.search(r'id="codes-generated">8<', answer.text)
    assert "operator:" in answer.text[answer.text.index('id="batches"') :]
    audit = audit_rows(client)
    assert "coupon.batch" in audit
    assert "campaign:spring" in audit
    assert "count: 5" in audit


@pytest.mark.slow
@pytest.mark.usefixtures("codes")
@pytest.mark.parametrize(
    ("count", "status"),
    [("abc", 422), ("0", 422), ("2000000", 422), ("²", 422), ("١٢", 422), ("9" * 40, 422)],
)
def test_a_bad_count_shows_the_problem(client, count, status):
    sign_in(client, "admin")
    answer = client.post(COUPONS + "/spring/batches", data={"csrf": token(client),
                                                            "count": count})  # fmt: skip
    assert answer.status_code == status
    assert 'role="alert"' in answer.text
    assert re.search(r'id="codes-generated">3<', answer.text)


@pytest.mark.usefixtures("codes")
def test_a_public_campaign_has_no_batches(client):
    sign_in(client, "admin")
    assert 'id="generate"' not in client.get(COUPONS + "/open").text
    answer = client.post(COUPONS + "/open/batches", data={"csrf": token(client), "count": "1"})
    assert answer.status_code == 409


@pytest.mark.usefixtures("codes")
def test_generating_needs_the_role_and_the_csrf_token(client):
    for role in ("support", "analyst"):
        sign_in(client, role)
        form = {"csrf": token(client), "count": "5"}
        assert client.post(COUPONS + "/spring/batches", data=form).status_code == 403
    sign_in(client, "marketer")
    form = {"csrf": "forged", "count": "5"}
    assert client.post(COUPONS + "/spring/batches", data=form).status_code == 403
    assert "coupon.batch" not in audit_rows(client)


def test_only_an_admin_exports_the_codes_and_the_export_is_audited(client, codes):
    sign_in(client, "marketer")
    assert 'id="export"' not in client.get(COUPONS + "/spring").text
    assert client.get(COUPONS + "/spring/codes.csv").status_code == 403
    sign_in(client, "admin")
    assert 'id="export"' in client.get(COUPONS + "/spring").text
    answer = client.get(COUPONS + "/spring/codes.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["cache-control"] == "no-store"
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 3
    assert {row["code"] for row in rows} >= set(codes)
    assert "coupon.export" in audit_rows(client)


# — access keys —


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it_audited(client, stocked):
    sign_in(client, "admin")
    page = client.get(KEYS).text
    answer = client.post(KEYS, data={"csrf": csrf_of(page), "role": "pos", "location": "kiosk",
                                     "label": "till <1>"})  # fmt: skip
    assert answer.status_code == 201
    assert answer.headers["cache-control"] == "no-store"
    found = re.search(r'id="new-key">(kpk_[^<]+)<', answer.text)
    assert found
    key = found.group(1)
    principal = keys.authenticate(stocked, key)
    assert principal is not None
    assert (principal.role, principal.location) == ("pos", "kiosk")
    listed = client.get(KEYS).text
    assert key not in listed  # never again
    assert key[:10] in listed
    assert "till &lt;1&gt;" in listed
    key_id = str(principal.key_id)
    revoked = client.post(f"{KEYS}/{key_id}/revoke", data={"csrf": csrf_of(listed)})
    assert revoked.status_code == 200
    assert 'id="revoked"' in revoked.text
    assert keys.authenticate(stocked, key) is None
    audit = client.get("/console/zerno/audit").text
    assert "key.create" in audit
    assert "key.revoke" in audit
    assert f"key:{key_id}" in audit
    assert key not in audit


def test_a_key_the_service_refuses_shows_the_problem(client):
    sign_in(client, "admin")
    answer = client.post(KEYS, data={"csrf": token(client), "role": "pos", "location": ""})
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text
    assert "kpk_" not in answer.text
    odd = client.post(KEYS, data={"csrf": token(client), "role": "root"})
    assert odd.status_code == 422
    elsewhere = client.post(KEYS, data={"csrf": token(client), "role": "pos",
                                        "location": "nowhere"})  # fmt: skip
    assert elsewhere.status_code == 422
    assert "&#39;nowhere&#39; is not a location of program zerno" in elsewhere.text
    assert "kpk_" not in elsewhere.text


def test_an_audit_row_names_no_empty_detail(client):
    sign_in(client, "admin")
    client.post(KEYS, data={"csrf": token(client), "role": "admin"})
    audit = client.get("/console/zerno/audit").text
    assert "key.create" in audit
    assert "None" not in audit


@pytest.mark.parametrize("role", ["support", "analyst", "marketer"])
def test_only_an_admin_opens_or_changes_keys(client, role):
    sign_in(client, role)
    assert client.get(KEYS).status_code == 403
    assert 'href="/console/zerno/keys"' not in client.get("/console/zerno/").text
    assert client.post(KEYS, data={"csrf": token(client), "role": "analyst"}).status_code == 403


def test_keys_need_the_csrf_token_and_a_known_key(client, stocked):
    sign_in(client, "admin")
    assert client.post(KEYS, data={"csrf": "forged", "role": "analyst"}).status_code == 403
    key, made = keys.create_key(stocked, "zerno", "analyst", now=NOW)
    forged = client.post(f"{KEYS}/{made['id']}/revoke", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert keys.authenticate(stocked, key) is not None
    assert client.post(f"{KEYS}/999/revoke", data={"csrf": token(client)}).status_code == 404
    other, _ = keys.create_key(stocked, "other", "analyst", now=NOW)
    other_id = keys.authenticate(stocked, other)
    assert other_id is not None
    answer = client.post(f"{KEYS}/{other_id.key_id}/revoke", data={"csrf": token(client)})
    assert answer.status_code == 404  # another program's key
    assert keys.authenticate(stocked, other) is not None


def test_the_nav_links_follow_the_role(client):
    sign_in(client, "admin")
    nav = client.get("/console/zerno/").text
    assert 'href="/console/zerno/coupons"' in nav
    assert 'href="/console/zerno/keys"' in nav
    sign_in(client, "analyst")
    nav = client.get("/console/zerno/").text
    assert 'href="/console/zerno/coupons"' in nav
    assert 'href="/console/zerno/keys"' not in nav


# — languages —

ACTIONS = ("member.block", "member.unblock", "coupon.resend", "coupon.batch", "coupon.export",
           "key.create", "key.revoke", "operator.login", "operator.logout",
           "member.adjustment", "program.publish", "member.link.revoke", "member.links.revoke",
           "link.active", "link.expired", "link.revoked")  # fmt: skip
STATUSES = tuple(f"campaign.{s}" for s in ("unique", "public", "active", "scheduled", "paused",
                                           "ended"))  # fmt: skip


def test_every_text_of_the_console_is_in_russian() -> None:
    """Each message of the console's templates, and the audit actions, campaign states,
    channels and key roles they show, has a Russian translation in `messages.po`."""
    folder = ROOT / "kopilka" / "platform" / "console" / "templates"
    coupon_pages = ROOT / "kopilka" / "mechanics" / "coupons" / "templates"  # the mechanic's
    wanted = {*ACTIONS, *STATUSES, *CHANNELS, *keys.ROLES,
              *(f"coupon.{s}" for s in ("issued", "available", "paused", "expired", "used")),
              "The status must be active or blocked.", routes.TOO_LONG,
              routes.NOT_FOUND}  # fmt: skip
    for path in [*folder.glob("*.html"), *coupon_pages.glob("*.html")]:
        if path.name.startswith("member_"):  # the member page has its own catalog
            continue
        found = extract_from_file("jinja2.ext:babel_extract", path,
                                  options={"extensions": "jinja2.ext.i18n"})  # fmt: skip
        wanted |= {message for _, message, _, _ in found if isinstance(message, str)}
    russian = i18n.translations("ru")
    assert sorted(m for m in wanted if russian.gettext(m) == m) == []


@pytest.mark.usefixtures("codes")
def test_the_new_pages_speak_russian(client):
    sign_in(client, "admin")
    page = client.get(COUPONS + "/spring?lang=ru").text
    assert "Создать коды" in page
    assert "идёт" in page
    assert "Ключи доступа" in client.get(KEYS).text
    assert "Заблокировать участника" in client.get(MEMBER).text
