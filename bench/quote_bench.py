"""How fast is a quote? A 10-line receipt against a program of 50 rules of all three kinds.

Run:  taskset -c 0 .venv/bin/python bench/quote_bench.py   (or `make bench`)

Receipts are pre-parsed (parsing is the adapter's job, not the calculator's); each
figure is the median over batches of the time per receipt, for:
- warm:   the steady state — line plans memoised per (matching rules, category);
- cold:   every memo cleared before every receipt — the worst case, each line's
          deciding rules chosen from scratch;
- +json:  warm quote plus rendering the full JSON answer with explanations.
- whole:  what the server does for a quote of the body, bar the database: the JSON
          bytes read (`read_json`) and parsed (`parse_receipt`), quoted, the answer
          rendered and encoded to bytes (issue 17's goal: ≤ 25 µs).
Goal (issue 3): ≥ 50,000 receipts/s on one core, median ≤ 20 µs per receipt (warm).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from kopilka.checkout.calculator import Calculator
from kopilka.checkout.wire import quote_json
from kopilka.kernel.program import Program
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import MemberContext, Receipt, parse_receipt
from kopilka.platform.http.common import read_json

LOCATIONS = [f"store-{i}" for i in range(8)]
TOP_CATEGORIES = ["drinks", "food", "bakery", "tobacco", "grocery", "household"]
SUB_CATEGORIES = [(f"{top}-{k}", top) for top in TOP_CATEGORIES for k in range(4)]
PRODUCTS = [(f"SKU-{i:04d}", SUB_CATEGORIES[i % len(SUB_CATEGORIES)][0]) for i in range(300)]
TIERS = ["base", "silver", "gold"]
SEGMENTS = ["sleepers", "newcomers", "students", "families"]


def program_document(rng: random.Random, scale: int = 1) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    when: dict[str, Any]
    then: dict[str, Any]
    for i in range(15 * scale):  # client rules (K1/P1)
        when = [
            {"members": [f"card:{100000 + rng.randrange(500)}" for _ in range(3)]},
            {"tiers": [rng.choice(TIERS[1:])]},
            {"segments": [rng.choice(SEGMENTS)]},
            {"members": [f"card:{100000 + rng.randrange(500)}"], "locations": LOCATIONS[:2]},
        ][i % 4]
        then = {"redeem_percent": 30} if i % 5 == 4 else {"percent": rng.choice([2, 3, 5, 10, 15])}
        rules.append({"code": f"client-{i}", "kind": "client", "when": when, "then": then})
    for i in range(20 * scale):  # product rules (K2/P2)
        if i % 3 == 0:
            when = {"skus": [rng.choice(PRODUCTS)[0] for _ in range(5)]}
        elif i % 3 == 1:
            when = {"categories": [rng.choice(SUB_CATEGORIES)[0]]}
        else:
            when = {"categories": [TOP_CATEGORIES[i % len(TOP_CATEGORIES)]]}
        effects: list[dict[str, Any]] = [
            {"multiplier": 2},
            {"percent": 5, "max_points": "50"},
            {"points_per_unit": "10"},
            {"accrue": False, "redeem_percent": 0},
            {"redeem_percent": 50},
        ]
        then = effects[i % 5]
        rules.append({"code": f"product-{i}", "kind": "product", "when": when, "then": then})
    for i in range(15 * scale):  # behaviour rules (K3/P3)
        behaviours: list[dict[str, Any]] = [
            {"time": {"from": "16:00", "to": "18:00"}},
            {"weekdays": [rng.choice(["mon", "tue", "wed"])]},
            {"dates": ["03-08", "02-23"]},
            {"receipt_total": {"min": "1000.00"}},
            {"time": {"from": "22:00", "to": "02:00"}, "weekdays": ["fri", "sat"]},
            {"locations": [rng.choice(LOCATIONS)]},
        ]
        when = behaviours[i % 6]
        then = {"redeem_percent": 80} if i % 6 == 5 else {"multiplier": rng.choice([2, 3])}
        rules.append({"code": f"behaviour-{i}", "kind": "behaviour", "when": when, "then": then})
    return {
        "code": "bench",
        "name": "Benchmark chain",
        "currency": "RUB",
        "timezone": "Europe/Moscow",
        "partners": [
            {"code": f"partner-{p}", "locations": [{"code": c} for c in LOCATIONS[p::3]]}
            for p in range(3)
        ],
        "catalog": {
            "categories": [{"code": c} for c in TOP_CATEGORIES]
            + [{"code": c, "parent": parent} for c, parent in SUB_CATEGORIES],
            "products": [{"sku": s, "category": c, "price": "100.00"} for s, c in PRODUCTS],
        },
        "tiers": {
            "levels": [
                {"code": "base"},
                {"code": "silver", "qualify": {"spend": "10000"}},
                {"code": "gold", "qualify": {"spend": "30000"}},
            ]
        },
        "rules": rules,
    }


Sample = tuple[Receipt, MemberContext]


START = datetime(2026, 1, 1, tzinfo=UTC)


def receipts(program: Program, rng: random.Random, count: int) -> list[Sample]:
    return [(parse_receipt(body, program, now=START), member)
            for body, member in bodies(rng, count)]  # fmt: skip


def bodies(rng: random.Random, count: int) -> list[tuple[dict[str, Any], MemberContext]]:
    start = START
    made = []
    for k in range(count):
        card = f"card:{100000 + rng.randrange(500)}"
        body = {
            "receipt_id": f"R-{k}",
            "location": rng.choice(LOCATIONS),
            "member": card,
            "at": (start + timedelta(minutes=rng.randrange(365 * 24 * 60))).isoformat(),
            "lines": [
                {
                    "sku": rng.choice(PRODUCTS)[0],
                    "qty": rng.choice([1, 1, 2, 3, "0.5"]),
                    "price": f"{rng.randrange(50, 900)}.{rng.randrange(100):02d}",
                }
                for _ in range(10)
            ],
            "redeem": rng.choice(["0", "max", "10.00", "25.50"]),
        }
        member = MemberContext(
            frozenset({card}),
            rng.choice(TIERS),
            frozenset(rng.sample(SEGMENTS, rng.randrange(3))),
            100_000_00,
        )
        made.append((body, member))
    return made


def per_receipt_us(run: Any, batch: list[Any], repeats: int) -> float:
    """Median over `repeats` batches of the mean time per receipt, in µs."""
    samples = []
    for _ in range(repeats):
        began = time.perf_counter_ns()
        for item in batch:
            run(item)
        samples.append((time.perf_counter_ns() - began) / len(batch) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scale", type=int, default=1, help="rules × scale (1: 50 rules)")
    args = parser.parse_args()
    rng = random.Random(20261124)
    document = program_document(rng, args.scale)
    began = time.perf_counter_ns()
    program = parse_program(document)
    calculator = Calculator(program)
    compile_ms = (time.perf_counter_ns() - began) / 1e6
    sent = bodies(rng, args.receipts)
    batch = [(parse_receipt(body, program, now=START), member) for body, member in sent]
    raw = [(json.dumps(body).encode(), member) for body, member in sent]

    def warm(item: tuple[Receipt, MemberContext]) -> None:
        calculator.quote(*item)

    def cold(item: tuple[Receipt, MemberContext]) -> None:
        calculator.forget()
        calculator.quote(*item)

    def with_json(item: tuple[Receipt, MemberContext]) -> None:
        quote_json(calculator.quote(*item), program, status="completed", balance=item[1].balance)

    def whole(item: tuple[bytes, MemberContext]) -> None:
        body, member = item
        receipt = parse_receipt(read_json(body), program, now=START)
        answer = quote_json(calculator.quote(receipt, member), program, status="completed",
                            balance=member.balance)  # fmt: skip
        msgspec.json.encode(answer)

    for item in batch:  # warm the memo once, as a running server would be
        warm(item)
    warm_us = per_receipt_us(warm, batch, args.repeats)
    cold_us = per_receipt_us(cold, batch[: max(200, args.receipts // 10)], args.repeats)
    json_us = per_receipt_us(with_json, batch, args.repeats)
    whole_us = per_receipt_us(whole, raw, args.repeats)
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "rules": len(program.rules),
        "lines_per_receipt": 10,
        "distinct_receipts": len(batch),
        "parse_and_compile_ms": round(compile_ms, 2),
        "warm_us_per_receipt": round(warm_us, 2),
        "warm_receipts_per_s": round(1e6 / warm_us),
        "cold_us_per_receipt": round(cold_us, 2),
        "warm_plus_json_us_per_receipt": round(json_us, 2),
        "whole_quote_us_per_receipt": round(whole_us, 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
