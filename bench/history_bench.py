"""What a member's history costs: a purchase and a balance read for a member with a long
history against one with a short one, in one run (PostgreSQL by default).

Run:  .venv/bin/python bench/history_bench.py                  (~2 minutes)
      .venv/bin/python bench/history_bench.py --long 3000 --db sqlite

The café program of examples/zerno/program.yaml (tiers over a 365-day window), with the
VIP threshold raised out of reach so that every purchase runs the tier check (a member
at the top level skips it), and an accumulative discount by lifetime spend (a discount
that reads the member's past on every purchase). Two members: one with `--short`
purchases behind them (default 10), one with `--long` (default 10,000), each history
spread evenly over the two years before the bench's moment, made through the purchase
pipeline itself (so every table a purchase writes holds them). Then rounds alternate
the two members: `--ops` purchases each, then `--ops` balance reads each, in one thread
in this process (no HTTP: what is measured is the service and the database). Reported:
the median time of an operation per member, and long ÷ short (the goal: ≤ 1.15×).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from purchase_bench import LINES, NOW, PROGRAM, database  # type: ignore[import-not-found]

from kopilka.checkout.purchases import process_purchase
from kopilka.members.balances import balance
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program

ROOT = Path(__file__).resolve().parent.parent
SPAN = timedelta(days=730)


def program() -> dict[str, Any]:
    """The café's program with VIP out of reach and a discount by lifetime spend."""
    document = cast(dict[str, Any], copy.deepcopy(load_document(PROGRAM)))
    for level in document["tiers"]["levels"]:
        if level.get("qualify"):
            level["qualify"]["spend"] = "900000000.00"
    document["discounts"] = [{
        "code": "loyal", "name": "Накопительная",
        "accumulative": [{"spend": "0.00", "percent": 1}, {"spend": "900000000.00", "percent": 5}],
    }]  # fmt: skip
    return document


def receipt(member: str, run: str, n: int) -> dict[str, Any]:
    return {"receipt_id": f"{run}-{member}-{n}", "location": "kiosk", "member": member,
            "lines": LINES[n % len(LINES)]}  # fmt: skip


def history(engine: Any, member: str, count: int) -> None:
    """`count` purchases spread over the two years before NOW."""
    step = SPAN / max(count, 1)
    for n in range(count):
        at = NOW - SPAN + step * n
        process_purchase(engine, "zerno", receipt(member, "past", n), now=at, actor="bench")


def timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with database(options.db, 2, ROOT) as db:
        engine = db.engine()
        apply_program(engine, program(), actor="bench", now=NOW - SPAN - timedelta(days=1))
        started = time.perf_counter()
        history(engine, "1", options.short)
        history(engine, "2", options.long)
        print(f"history made in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        members = {"short": "1", "long": "2"}
        bought: dict[str, list[float]] = {name: [] for name in members}
        read: dict[str, list[float]] = {name: [] for name in members}
        n = 0
        for round_ in range(options.rounds + 1):  # the first round warms up
            for name, member in members.items():
                times = []
                for _ in range(options.ops):
                    n += 1
                    body = receipt(member, f"r{round_}", n)
                    times.append(timed(lambda body=body: process_purchase(
                        engine, "zerno", body, now=NOW, actor="bench")))  # fmt: skip
                if round_:
                    bought[name].append(statistics.median(times))
                times = [timed(lambda member=member: balance(engine, "zerno", member))
                         for _ in range(options.ops)]  # fmt: skip
                if round_:
                    read[name].append(statistics.median(times))
        engine.dispose()
    report(options, bought, read)


def report(options: Any, bought: dict[str, list[float]], read: dict[str, list[float]]) -> None:
    print(f"{options.db}: {options.short} against {options.long} past purchases, "
          f"{options.rounds} rounds of {options.ops} operations each, medians")  # fmt: skip
    for what, figures in (("purchase", bought), ("balance", read)):
        short, long = (statistics.median(figures[name]) for name in ("short", "long"))
        print(f"  {what}: short {short * 1e6:,.0f} µs, long {long * 1e6:,.0f} µs, "
              f"long/short {long / short:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
