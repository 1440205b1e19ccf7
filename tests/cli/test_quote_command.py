"""`kopilka quote`: the worked example of shared/API.md to the kopeck, and its problems."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_examples import kopilka
from tests.conftest import EXAMPLES

API_PROGRAM = str(EXAMPLES / "api" / "program.yaml")
API_RECEIPT = str(EXAMPLES / "api" / "receipt.json")

# The answer printed in shared/API.md for the example receipt (500.00 points before it).
API_ANSWER = {
    "receipt_id": "R-1001",
    "total": "610.00", "discount": "0.00", "redeemed": "50.00", "paid": "560.00",
    "accrued": "16.80", "accrued_status": "available", "max_redeemable": "500.00",
    "balance": {"available": "466.80", "pending": "0.00", "held": "0.00"},
    "lines": [
        {"n": 0, "sku": "CAP-300", "amount": "360.00", "discount": "0.00",
         "redeemed": "29.51", "accrued": "9.91", "redeemable": "360.00",
         "explain": [{"rule": "happy-hours", "kind": "behaviour", "coefficient": "3"}]},
        {"n": 1, "sku": "X-1", "amount": "250.00", "discount": "0.00",
         "redeemed": "20.49", "accrued": "6.89", "redeemable": "250.00",
         "explain": [{"rule": "happy-hours", "kind": "behaviour", "coefficient": "3"}]},
    ],
}  # fmt: skip


def test_the_api_worked_example_is_answered_to_the_kopeck():
    result = kopilka("quote", API_PROGRAM, API_RECEIPT, "--balance", "500")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert {key: answer[key] for key in API_ANSWER} == API_ANSWER
    assert answer["purchase_id"] is None
    assert answer["status"] == "quote"
    assert answer["member"] == "card:100001"


def test_the_member_flag_overrides_the_receipts_member(tmp_path: Path):
    body = json.loads(Path(API_RECEIPT).read_text())
    del body["member"]
    body["redeem"] = "0"
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(body))
    anonymous = json.loads(kopilka("quote", API_PROGRAM, str(receipt)).stdout)
    member = json.loads(kopilka("quote", API_PROGRAM, str(receipt), "--member", "card:7").stdout)
    assert (anonymous["accrued"], anonymous["accrued_status"]) == ("0.00", None)
    assert (member["accrued"], member["member"]) == ("18.30", "card:7")  # 610.00 × 1 % × 3


def test_redeeming_more_than_the_balance_is_an_insufficient_points_problem():
    result = kopilka("quote", API_PROGRAM, API_RECEIPT, "--balance", "10")
    assert result.returncode == 1
    problem = json.loads(result.stdout)
    assert problem["code"] == "insufficient_points"
    assert problem["status"] == 422
    assert "redeem 50.00" in problem["detail"]
    assert "at most 10.00" in problem["detail"]
    assert "insufficient_points" in result.stderr


def test_a_yaml_receipt_is_read_like_a_json_one(tmp_path: Path):
    receipt = tmp_path / "receipt.yaml"
    receipt.write_text(
        "receipt_id: R-1\nlocation: rest-a\nmember: card:1\nat: 2026-03-09T16:30:00+03:00\n"
        "lines:\n  - {sku: CAP-300, qty: 1, price: 180.00}\n"
    )
    answer = json.loads(kopilka("quote", API_PROGRAM, str(receipt)).stdout)
    assert answer["accrued"] == "5.40"  # 180.00 × 1 % × 3


def test_a_bad_balance_is_a_validation_problem():
    result = kopilka("quote", API_PROGRAM, API_RECEIPT, "--balance", "-5")
    problem = json.loads(result.stdout)
    assert (result.returncode, problem["code"]) == (1, "validation_error")
    assert problem["errors"][0]["loc"] == "balance"
