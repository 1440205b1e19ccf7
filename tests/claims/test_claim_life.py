"""A claim's life on both databases: filed, confirmed and processed as its purchase at the
program version in force at the receipt's time — once — or rejected; every step kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import Conflict, NotFound
from kopilka.ledger.verify import verify
from kopilka.mechanics.claims.handlers import list_claims, read_claim
from kopilka.mechanics.claims.tables import claims
from kopilka.members.balances import balance
from kopilka.members.handlers import set_member_status
from kopilka.platform.tables import purchases, transfers
from tests.claims.conftest import (
    CARD,
    DAY,
    HOUR,
    apply,
    cafe_document,
    confirm,
    file,
    receipt,
    reject,
)
from tests.store.conftest import NOW

TEA_10 = {"code": "tea-10", "kind": "product", "when": {"skus": ["TEA-400"]},
          "then": {"percent": 10}}  # fmt: skip


def purchases_of(engine: Engine, receipt_id: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(purchases).where(purchases.c.receipt_id == receipt_id)
        ).scalar_one())  # fmt: skip


def actions(claim: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["action"], e["status"], e["actor"]) for e in claim["events"]]


def test_a_confirmed_claim_earns_by_the_rules_in_force_at_its_receipt_s_time(cafe: Engine) -> None:
    claim = file(cafe)
    assert (claim["status"], claim["program_version"], claim["total"]) == ("open", 1, "150.00")
    document = cafe_document()
    apply(cafe, {**document, "rules": [*document["rules"], TEA_10]}, NOW)
    # the new version's rule is live: a tea bought now earns 10 %
    bought_now = {k: v for k, v in receipt().items() if k not in ("at", "note")}
    now_bought = process_purchase(cafe, "zerno", bought_now, now=NOW + HOUR, actor="pos").answer
    assert (now_bought["accrued"], now_bought["program_version"]) == ("15.00", 2)

    done = confirm(cafe, claim, at=NOW + 2 * HOUR)

    assert (done["status"], done["points"]) == ("processed", "1.50")  # 1 % of 150.00, version 1
    answer = read_claim(cafe, "zerno", claim["id"], now=NOW + 2 * HOUR)
    assert answer["purchase_id"] == done["purchase_id"]
    assert actions(answer) == [("file", "open", "key:1"), ("confirm", "confirmed", "key:2"),
                               ("process", "processed", "key:2")]  # fmt: skip
    assert purchases_of(cafe, claim["receipt_id"]) == 1
    assert balance(cafe, "zerno", f"card:{CARD}")["available"] == "16.50"
    assert verify(cafe)[1] == []


def test_the_till_sending_the_claimed_receipt_later_gets_the_claim_s_purchase(
    cafe: Engine,
) -> None:
    body = receipt()
    done = confirm(cafe, file(cafe, body))
    till = {key: value for key, value in body.items() if key != "note"}
    resent = process_purchase(cafe, "zerno", till, now=NOW + DAY, actor="pos")
    assert (resent.created, resent.answer["purchase_id"]) == (False, done["purchase_id"])
    assert purchases_of(cafe, body["receipt_id"]) == 1


def test_a_claim_s_purchase_is_refunded_like_any_other(cafe: Engine) -> None:
    done = confirm(cafe, file(cafe))
    refund_purchase(cafe, "zerno", done["purchase_id"], {"refund_id": "RF-1"}, actor="pos",
                    now=NOW + DAY)  # fmt: skip
    assert balance(cafe, "zerno", f"card:{CARD}")["available"] == "0.00"
    assert verify(cafe)[1] == []


def test_a_rejected_claim_makes_no_purchase_and_stays_rejected(cafe: Engine) -> None:
    claim = file(cafe)
    rejected = reject(cafe, claim, "no such receipt in our till")
    assert (rejected["status"], rejected["reason"], rejected["decided_by"]) == (
        "rejected", "no such receipt in our till", "key:2")  # fmt: skip
    assert reject(cafe, claim)["events"] == rejected["events"]  # the same decision again: nothing
    with pytest.raises(Conflict, match="was rejected: a decision is final"):
        confirm(cafe, claim)
    assert purchases_of(cafe, claim["receipt_id"]) == 0
    assert balance(cafe, "zerno", f"card:{CARD}")["available"] == "0.00"


def test_a_confirmed_claim_can_t_be_rejected(cafe: Engine) -> None:
    claim = file(cafe)
    done = confirm(cafe, claim)
    assert confirm(cafe, claim)["events"] == done["events"]  # confirmed again: nothing more
    with pytest.raises(Conflict, match="was confirmed"):
        reject(cafe, claim)


def test_a_receipt_already_processed_can_t_be_claimed(cafe: Engine) -> None:
    body = receipt()
    bought = process_purchase(cafe, "zerno", {k: v for k, v in body.items() if k != "note"},
                              now=NOW - DAY, actor="pos").answer  # fmt: skip
    with pytest.raises(Conflict, match=f"already processed: purchase {bought['purchase_id']}"):
        file(cafe, body)
    assert list_claims(cafe, "zerno", now=NOW)["items"] == []


def test_two_claims_for_one_receipt_are_one(cafe: Engine) -> None:
    body = receipt()
    first = file(cafe, body)
    second = file(cafe, {**body, "note": "the member called again"}, actor="key:7")
    assert second["id"] == first["id"]
    assert (second["note"], len(second["events"])) == ("the till was offline", 1)


def test_another_partner_s_claim_does_not_exist_for_it(cafe: Engine) -> None:
    at_kiosk = file(cafe)
    with pytest.raises(NotFound, match=f"claim {at_kiosk['id']} does not exist"):
        confirm(cafe, at_kiosk, partner="lavka")
    with pytest.raises(NotFound):
        read_claim(cafe, "zerno", at_kiosk["id"], now=NOW, partner="lavka")
    assert list_claims(cafe, "zerno", now=NOW, partner="lavka")["items"] == []
    assert [c["id"] for c in list_claims(cafe, "zerno", now=NOW, partner="zerno")["items"]] == [
        at_kiosk["id"]]  # fmt: skip
    at_shop = file(cafe, receipt(location="shop", lines=[{"sku": "CRS-1", "qty": 2}]))
    assert confirm(cafe, at_shop, partner="lavka")["points"] == "2.80"


def test_an_open_claim_is_overdue_after_the_sla(cafe: Engine) -> None:
    claim = file(cafe)
    assert claim["due_at"] == (NOW + 24 * HOUR).isoformat()
    assert read_claim(cafe, "zerno", claim["id"], now=NOW + 23 * HOUR)["overdue"] is False
    late = read_claim(cafe, "zerno", claim["id"], now=NOW + 24 * HOUR)
    assert late["overdue"] is True
    assert confirm(cafe, claim, at=NOW + 30 * HOUR)["overdue"] is False  # decided: no clock
    assert [c["id"] for c in list_claims(cafe, "zerno", now=NOW, status="processed")["items"]] == [
        claim["id"]]  # fmt: skip


def test_the_list_pages_newest_first(cafe: Engine) -> None:
    ids = [file(cafe)["id"] for _ in range(3)]
    page = list_claims(cafe, "zerno", now=NOW, status="open", limit=2)
    assert [c["id"] for c in page["items"]] == ids[:0:-1]
    rest = list_claims(cafe, "zerno", now=NOW, status="open", limit=2, before=int(page["next"]))
    assert ([c["id"] for c in rest["items"]], rest["next"]) == ([ids[0]], None)


def test_a_blocked_member_s_claim_is_reopened_with_the_refusal(cafe: Engine) -> None:
    claim = file(cafe)
    set_member_status(cafe, "zerno", f"card:{CARD}", "blocked", now=NOW)
    with pytest.raises(Conflict, match="blocked"):
        confirm(cafe, claim)
    reopened = read_claim(cafe, "zerno", claim["id"], now=NOW + HOUR)
    assert reopened["status"] == "open"
    assert [e["action"] for e in reopened["events"]] == ["file", "confirm", "unprocessed"]
    assert "blocked" in reopened["events"][-1]["note"]
    assert purchases_of(cafe, claim["receipt_id"]) == 0


def test_ledger_rows_name_the_claim_s_purchase(cafe: Engine) -> None:
    done = confirm(cafe, file(cafe))
    with cafe.connect() as connection:
        rows = connection.execute(
            select(transfers.c.actor, transfers.c.purchase_id).where(
                transfers.c.purchase_id == int(done["purchase_id"])
            )
        ).all()
    assert {row.actor for row in rows} == {f"claim:{done['id']}"}


def test_verify_proves_a_processed_claim_keeps_its_purchase_s_points(cafe: Engine) -> None:
    done = confirm(cafe, file(cafe))
    assert verify(cafe)[1] == []
    with cafe.begin() as connection:
        connection.execute(update(claims).where(claims.c.id == int(done["id"])).values(points=1))
    found = verify(cafe)[1]
    assert [str(d) for d in found if f"claim {done['id']} " in str(d)], found
