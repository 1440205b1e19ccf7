"""Tiers over HTTP: the program's levels, a member's tier and progress, a tier set by hand
(admin and support keys only, audited), the tier history; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.platform.http import examples
from tests.api.conftest import Api, key_for
from tests.api.test_http import RECEIPT, problem

AT = "2026-03-10T11:00:00+03:00"  # vip-50 holds until the end of 2026
VIP = {"tier": "vip", "until": "2099-12-31", "reason": "the seed's temporary VIP"}


def put(api: Api, path: str, body: Any) -> Any:
    return api.client.put(api.base + path, json=body,
                          headers={"Authorization": f"Bearer {api.key}"})  # fmt: skip


def test_the_programs_tiers_are_readable_as_declared(admin: Api) -> None:
    answer = admin.get("/tiers")
    assert answer.status_code == 200, answer.text
    assert answer.json() == examples.TIERS  # the zerno program's levels


def test_a_member_sees_their_tier_what_the_next_needs_and_a_tier_set_by_hand(
    admin: Api, client: TestClient, zerno_engine: Engine
) -> None:
    admin.post("/members", {"card": "100009"})
    bought = admin.post("/purchases", {**RECEIPT, "at": AT})
    assert bought.json()["accrued"] == "4.50"
    member = admin.get("/members/card:100009").json()
    assert (member["tier"]["code"], member["tier"]["manual"]) == ("base", False)
    assert member["next_tier"] == {"code": "vip", "name": "VIP",
                                   "missing": {"spend": "149550.00"}}  # fmt: skip
    assert member["privileges"] == []

    support = Api(client, key_for(zerno_engine, "support"))
    changed = put(support, "/members/card:100009/tier", VIP)
    assert changed.status_code == 200, changed.text
    assert set(changed.json()) == set(examples.MEMBER_TIER)
    assert set(changed.json()["tier"]) == set(examples.MEMBER_TIER["tier"])
    member = admin.get("/members/card:100009").json()
    assert member["tier"]["code"] == "vip"
    assert member["tier"]["manual"] is True
    assert member["tier"]["until"] == "2099-12-31T21:00:00+00:00"  # the day's end in Moscow
    assert (member["next_tier"], member["privileges"]) == (None, ["vip-service"])

    as_vip = admin.post("/purchases", {**RECEIPT, "receipt_id": "R-2", "at": AT}).json()
    assert as_vip["accrued"] == "225.00"  # vip-50: 50 % of 450.00
    assert {"rule": "vip-50", "kind": "client", "coefficient": "50"} in as_vip["lines"][0][
        "explain"
    ]

    history = admin.get("/members/card:100009/tiers")
    assert history.status_code == 200, history.text
    [item] = history.json()["items"]
    assert set(item) == set(examples.TIER_HISTORY["items"][0])
    assert (item["from"], item["to"], item["manual"], item["reason"]) == (
        None, "vip", True, VIP["reason"])  # fmt: skip
    assert item["actor"].startswith("key:")


def test_only_admin_and_support_keys_set_a_tier_and_bad_bodies_are_named(
    admin: Api, client: TestClient, zerno_engine: Engine
) -> None:
    admin.post("/members", {"card": "100009"})
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    analyst = Api(client, key_for(zerno_engine, "analyst"))
    problem(put(pos, "/members/card:100009/tier", VIP), 403, "forbidden")
    problem(put(analyst, "/members/card:100009/tier", VIP), 403, "forbidden")
    assert analyst.get("/members/card:100009/tiers").status_code == 200
    problem(put(admin, "/members/card:100404/tier", VIP), 404, "not_found")
    for body, loc in (({"tier": "gold", "reason": "x"}, "tier"),
                      ({"tier": "vip"}, "reason"),
                      ({"tier": "vip", "reason": "x", "until": "2020-01-01"}, "until"),
                      (["vip"], "")):  # fmt: skip
        refused = problem(put(admin, "/members/card:100009/tier", body), 422, "validation_error")
        assert loc in [error["loc"] for error in refused["errors"]], refused
    assert admin.get("/members/card:100009/tiers").json() == {"items": [], "next": None}


def test_the_tier_history_is_newest_first_in_pages(admin: Api) -> None:
    admin.post("/members", {"card": "100009"})
    for n, code in enumerate(("vip", "base", "vip")):
        assert put(admin, "/members/card:100009/tier", {"tier": code, "reason": f"r{n}"}).is_success
    first = admin.get("/members/card:100009/tiers", params={"limit": 2}).json()
    assert [item["reason"] for item in first["items"]] == ["r2", "r1"]
    rest = admin.get("/members/card:100009/tiers", params={"before": first["next"]}).json()
    assert ([item["reason"] for item in rest["items"]], rest["next"]) == (["r0"], None)
    assert [(item["from"], item["to"]) for item in rest["items"]] == [(None, "vip")]
