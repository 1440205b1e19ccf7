"""What discounts cost a quote, and how long a million coupon codes take to make.

Run:  .venv/bin/python bench/discount_bench.py            (or `make bench-discounts`)
      .venv/bin/python bench/discount_bench.py --codes 0  (the quote part only)

1. Quote: the 10-line receipts and 50-rule program of bench/quote_bench.py, priced
   without discounts and with 20 discounts of every kind (percent, amount, accumulative,
   buy X get Y, n-th item, cheapest free, bundle; time-limited, personal, by tier,
   stackable and exclusive) — in one run, alternating, so the ratio is fair on a shared
   machine; the median µs per receipt of each and their ratio.
2. Coupons: one batch of `--codes` unique codes (default 1,000,000) generated and
   stored on PostgreSQL ($KOPILKA_BENCH_PG, default the local `test` database, in a
   fresh schema dropped afterwards): seconds in all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find bench/

from bench.quote_bench import LOCATIONS, PRODUCTS, SEGMENTS, program_document, receipts
from kopilka.checkout.calculator import Calculator
from kopilka.kernel.program_parser import parse_program

PG_URL = os.environ.get("KOPILKA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def discounts(rng: random.Random) -> list[dict[str, Any]]:
    """20 discounts of every kind, with conditions a good share of receipts meet."""
    skus = [sku for sku, _ in PRODUCTS]
    made: list[dict[str, Any]] = [
        {"code": "drinks-5", "percent": 5, "when": {"categories": ["drinks"]}},
        {"code": "bakery-morning", "percent": 15,
         "when": {"categories": ["bakery"], "time": {"from": "07:00", "to": "11:00"}}},
        {"code": "weekend", "percent": 3, "when": {"weekdays": ["sat", "sun"]}},
        {"code": "big-basket", "amount": "150.00", "when": {"receipt_total": {"min": "3000.00"}}},
        {"code": "loyal", "accumulative": [{"spend": "0", "percent": 1},
                                           {"spend": "10000.00", "percent": 3}]},
        {"code": "food-3-for-2", "buy_get": {"buy": 2, "get": 1}, "when": {"categories": ["food"]}},
        {"code": "second-half", "nth_item": {"n": 2, "percent": 50},
         "when": {"categories": ["grocery"]}},
        {"code": "cheapest-free", "cheapest_free": {"min_items": 8}, "stacking": "exclusive"},
        {"code": "breakfast", "bundle": {"items": [{"sku": skus[0]}, {"sku": skus[1]}],
                                         "price": "150.00"}},
        {"code": "gold-7", "percent": 7, "when": {"tiers": ["gold"]}, "priority": 5},
        {"code": "sleepers", "percent": 10, "when": {"segments": [SEGMENTS[0]]},
         "stacking": "exclusive"},
        {"code": "store-0", "percent": 2, "when": {"locations": [LOCATIONS[0]]}},
    ]  # fmt: skip
    for i in range(20 - len(made)):
        made.append({"code": f"sku-{i}", "percent": rng.choice([5, 10, 20]),
                     "when": {"skus": rng.sample(skus, 10)}})  # fmt: skip
    return made


def quote_costs(count: int, repeats: int) -> dict[str, Any]:
    rng = random.Random(20261127)
    plain_doc = program_document(rng)
    with_doc = {**plain_doc, "discounts": discounts(rng),
                "discount_limits": {"receipt_percent": 50}}  # fmt: skip
    plain, priced = Calculator(parse_program(plain_doc)), Calculator(parse_program(with_doc))
    batch = [(replace(r, redeem="max"), m) for r, m in receipts(plain.program, rng, count)]
    for receipt, member in batch:  # warm both memos, as a running server would be
        plain.quote(receipt, member)
        priced.quote(receipt, member)
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeats):
        for name, calculator in (("without", plain), ("with", priced)):
            began = time.perf_counter_ns()
            for receipt, member in batch:
                calculator.quote(receipt, member)
            times[name].append((time.perf_counter_ns() - began) / len(batch) / 1000)
    applied = sum(len(priced.quote(r, m).discounts) for r, m in batch) / len(batch)
    without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
    return {"receipts": len(batch), "discounts": len(with_doc["discounts"]),
            "discounts_applied_per_receipt": round(applied, 2),
            "us_per_receipt_without": round(without, 1),
            "us_per_receipt_with": round(with_, 1), "ratio": round(with_ / without, 2)}  # fmt: skip


def million_codes(count: int) -> dict[str, Any]:
    from kopilka.mechanics.coupons import handlers as coupons
    from kopilka.platform.db import make_engine
    from kopilka.platform.files import load_document
    from kopilka.platform.migrate import upgrade
    from kopilka.programs.handlers import apply_program

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        now = datetime.now(UTC)
        program = load_document(Path(__file__).resolve().parents[1] / "examples/zerno/program.yaml")
        apply_program(engine, program, actor="bench", now=now)
        campaign = {"code": "m", "kind": "unique", "effect": {"percent": 5}}
        coupons.create_campaign(engine, "zerno", campaign, actor="bench", now=now)
        began = time.perf_counter()
        coupons.create_batch(engine, "zerno", "m", {"count": count}, actor="bench", now=now)
        seconds = time.perf_counter() - began
        with engine.connect() as connection:
            stored = connection.execute(text("select count(distinct code) from coupons")).scalar()
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return {"codes": count, "distinct_stored": stored, "seconds": round(seconds, 1),
            "codes_per_s": round(count / seconds)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--codes", type=int, default=1_000_000)
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": f"{platform.machine()}, Python "
                                         f"{platform.python_version()}"}  # fmt: skip
    result["quote"] = quote_costs(args.receipts, args.repeats)
    if args.codes:
        result["coupon_batch_postgresql"] = million_codes(args.codes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
