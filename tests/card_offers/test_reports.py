"""Card-linked offers' reports and review queue over HTTP, on SQLite and PostgreSQL: an
offer's figures worked out again from the purchases sent (reached, activated, redeeming,
spend, cashback, fees, incremental sales against the control group), the bank's CSV, and
an unmatched descriptor decided in the queue becoming the rule the next purchase
matches by."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from fastapi.testclient import TestClient

from kopilka.mechanics.card_offers.model import Offer, in_control_group
from kopilka.platform.csv_export import safe_cell
from tests.card_offers.test_feed_api import (
    BASE,
    SOON,
    WEEKDAYS,
    admin,
    catalog,
    client,
    post,
    put,
    send,
)

__all__ = ["admin", "client"]
CARDS = [f"tok-{n:02d}" for n in range(12)]


def control_offer() -> Offer:
    """The offer as the model sees it, for its control group's hash (code and percent)."""
    return Offer("halves", "cafe", SOON.date(), SOON.date(), control_percent=Decimal(50))


def test_an_offers_figures_and_incremental_sales(client: TestClient,
                                                 admin: dict[str, str]) -> None:  # fmt: skip
    catalog(client, admin)
    halves = {**WEEKDAYS, "activation_required": False, "budget": None,
              "control_percent": "50", "max_cashback": None}  # fmt: skip
    assert put(client, admin, "/card-offers/halves", halves).status_code == 201
    everyone = [*CARDS, "tok-anna"]  # catalog() enrolled Anna's card
    held = {card for card in everyone if in_control_group(control_offer(), card)}
    assert 0 < len(held) < len(everyone)  # both groups have cards (the hash is stable)
    for n, card in enumerate(CARDS):
        put(client, admin, f"/cards/{card}", {"scheme": "visa", "first_six": "427600",
                                              "last_four": f"{n:04d}"})  # fmt: skip
    spend: dict[str, int] = {}
    for n, card in enumerate(CARDS[:8]):  # eight cards buy once; four never
        amount = 1000 + 100 * n
        spend[card] = amount
        send(client, admin, transaction_id=f"P-{n}", card=card, amount=f"{amount}.00")
    report = client.get(BASE + "/card-offers/halves/report", headers=admin).json()
    reached = [card for card in everyone if card not in held]
    redeeming = [card for card in spend if card not in held]
    cashback = sum(spend[card] // 10 for card in redeeming)  # 10 % of whole roubles
    per_reached = Decimal(sum(spend.get(card, 0) for card in reached)) / len(reached)
    per_held = Decimal(sum(spend.get(card, 0) for card in held)) / len(held)
    incremental = ((per_reached - per_held) * len(reached)).quantize(Decimal("0.01"))
    assert report["reached"] == len(reached)
    assert report["control_cards"] == len(held)
    assert report["redeeming"] == len(redeeming)
    assert report["activated"] == 0
    assert report["redeeming_spend"] == f"{sum(spend[card] for card in redeeming)}.00"
    assert report["cashback_pending"] == f"{cashback}.00"
    assert (report["cashback_confirmed"], report["cashback_paid"]) == ("0.00", "0.00")
    fees = sum(Decimal(spend[card]) * 2 / 100 + 1 for card in redeeming)
    assert Decimal(report["fees"]) == fees
    assert Decimal(report["incremental_sales"]) == incremental

    bank = client.get(BASE + "/card-reports", headers=admin).json()
    assert [item["offer"] for item in bank["offers"]] == ["halves", "weekdays"]
    assert bank["feed"]["matched_by_merchant_id"] == 8
    exported = client.get(BASE + "/card-reports.csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["offer"] for row in rows] == ["halves", "weekdays"]
    # a negative figure is a cell starting "-": written as text (`'-…`), never a formula
    assert rows[0]["incremental_sales"] == safe_cell(report["incremental_sales"])


def test_a_review_decision_becomes_the_rule_the_next_purchase_matches_by(
    client: TestClient, admin: dict[str, str]
) -> None:
    catalog(client, admin)
    noisy = {"merchant_id": None, "descriptor": "CAFE-ONE KIOSK *77", "mcc": "5814"}
    first = send(client, admin, transaction_id="U-1", **noisy)
    second = send(client, admin, transaction_id="U-2", **{**noisy, "descriptor": "Cafe One Kiosk"})
    assert (first["matched"], second["matched"]) == (None, None)
    queue = client.get(BASE + "/card-reviews", headers=admin).json()["reviews"]
    assert [item["transaction_id"] for item in queue] == ["U-1", "U-2"]
    assert queue[0]["suggestions"][0]["location"] == "cafe-1"
    decided = post(client, admin, f"/card-reviews/{queue[0]['id']}/decision",
                   {"location": "cafe-1"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "matched"
    assert client.get(BASE + "/card-reviews", headers=admin).json()["reviews"] == []
    matched = client.get(BASE + "/card-reviews?status=matched", headers=admin).json()
    assert {item["transaction_id"] for item in matched["reviews"]} == {"U-1", "U-2"}
    third = send(client, admin, transaction_id="U-3", **{**noisy, "descriptor": "CAFE ONE KIOSK"})
    assert third["matched"] == {"location": "cafe-1", "merchant": "cafe",
                                "rule": f"descriptor:{decided.json()['rule']}"}  # fmt: skip
    again = post(client, admin, f"/card-reviews/{queue[0]['id']}/decision",
                 {"location": "cafe-1"})  # fmt: skip
    assert again.status_code == 409
    neither = post(client, admin, "/card-reviews/1/decision", {})
    assert neither.status_code == 422
    missing = post(client, admin, "/card-reviews/999999/decision", {"dismiss": True})
    assert missing.status_code == 404
