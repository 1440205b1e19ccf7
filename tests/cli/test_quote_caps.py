"""`kopilka quote` shows the program's accrual caps at work: the demo café's VIP Monday
lunch, which K1 × K2 × K3 would pay 5,000 % of the bill, earns its 10 %, and says why."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from kopilka.demo import program_document
from tests.cli.test_examples import kopilka

# 450.00 + 220.00 = 670.00 on a Monday at noon, off the happy hours
LUNCH = {"receipt_id": "L-1", "location": "kiosk", "member": "card:700000000001",
         "at": "2026-11-23T12:00:00+03:00",
         "lines": [{"sku": "LUNCH-1", "qty": 1}, {"sku": "SOUP-1", "qty": 1}]}  # fmt: skip


def quote(tmp_path: Path, body: dict[str, Any], *flags: str) -> dict[str, Any]:
    """The answer of `kopilka quote` for the demo's program (the seed's café and its caps)."""
    program, receipt = tmp_path / "program.json", tmp_path / "receipt.json"
    program.write_text(json.dumps(program_document(), default=str))
    receipt.write_text(json.dumps(body))
    done = kopilka("quote", str(program), str(receipt), *flags)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_a_vip_monday_lunch_earns_the_line_cap_and_explains_it(tmp_path: Path):
    answer = quote(tmp_path, LUNCH, "--tier", "vip")
    assert answer["accrued"] == "67.00"  # 10 % of 670.00, not 670.00 × 1 % × 50 × 5 × 20
    lunch, soup = answer["lines"]
    assert (lunch["accrued"], soup["accrued"]) == ("45.00", "22.00")
    assert [entry.get("rule") for entry in lunch["explain"]] == ["vip-50", "lunch-5",
                                                                  "monday-20", None]  # fmt: skip
    assert lunch["explain"][-1] == {"cap": "accrual.max_percent", "max_percent": "10",
                                    "uncapped": "22500.00"}  # fmt: skip


def test_an_office_lunch_earns_the_receipt_cap_spread_over_its_lines(tmp_path: Path):
    office = {**LUNCH, "lines": [{"sku": "LUNCH-1", "qty": 3}, {"sku": "SOUP-1", "qty": 3},
                                 {"sku": "CAP-300", "qty": 3}]}  # fmt: skip
    answer = quote(tmp_path, office)
    lines = answer["lines"]
    assert answer["accrued"] == "150.00"  # 255.00 after the line caps (Monday: 10 % of 2,550)
    assert sum(Decimal(line["accrued"]) for line in lines) == Decimal(150)
    assert [line["explain"][-1] for line in lines] == [
        {"cap": "accrual.max_points_per_receipt", "max_points_per_receipt": "150.00",
         "uncapped": uncapped} for uncapped in ("135.00", "66.00", "54.00")
    ]  # fmt: skip
