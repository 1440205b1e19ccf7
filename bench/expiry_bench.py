"""Expire 1,000,000 lots on PostgreSQL: how long does the worker's expiry take?

Run:  .venv/bin/python bench/expiry_bench.py             (make bench-expiry; ~2 minutes)
      .venv/bin/python bench/expiry_bench.py --lots 100000   (a smaller run)

In a schema of its own (dropped afterwards) on $KOPILKA_BENCH_PG (default the local
`test` database): the café program of seed 002; 100,000 members with 10 lots each, all
burnt by the moment the expiry runs, filled by set-based SQL so that the books balance
(each lot credited to the member's available account by an adjustment transfer, the
accounts' running totals in step). Then `expire_due_points` — exactly what `kopilka
worker` runs — burns them all, in its batches of members, and `verify` checks the books
afterwards. Figure: seconds for the expiry (goal of issue 6: under 30 s), lots/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from kopilka.ledger.verify import verify
from kopilka.mechanics.expiry.handlers import expire_due_points
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.platform.migrate import upgrade
from kopilka.programs.handlers import apply_program

PG_URL = os.environ.get("KOPILKA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2027, 6, 1, tzinfo=UTC)
PROGRAM = Path(__file__).resolve().parent.parent / "examples" / "zerno" / "program.yaml"

FILL = [
    # members, and their four accounts with the lots' points already credited
    """INSERT INTO members (id, program_id, card, status, created_at)
       SELECT m, :program, 'B' || m, 'active', :earned FROM generate_series(1, :members) m""",
    """INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, credits_posted)
       SELECT :program, m, 'member:' || m, c.code,
              0, CASE WHEN c.code = 'available' THEN :per_member * 1000 ELSE 0 END
       FROM generate_series(1, :members) m,
            (VALUES ('available'), ('pending'), ('held'), ('debt')) AS c(code)""",
    """INSERT INTO lots (id, program_id, member_id, status, amount, remaining, earned_at,
                        available_at, expires_at, purchase_id, reason)
       SELECT l, :program, (l - 1) / :per_member + 1, 'available', 1000, 1000, :earned,
              :earned, :expires, NULL, 'adjustment'
       FROM generate_series(1, :lots) l""",
    """INSERT INTO transfers (program_id, transfer_key, debit_account_id, credit_account_id,
                             amount, reason, actor, created_at)
       SELECT :program, 'zerno:bench:' || l.id, adj.id, a.id, l.amount, 'adjustment',
              'bench', :earned
       FROM lots l
       JOIN accounts a ON a.member_id = l.member_id AND a.code = 'available'
       JOIN accounts adj ON adj.program_id = :program AND adj.member_id IS NULL
                        AND adj.code = 'adjustments'""",
    "SELECT setval(pg_get_serial_sequence('members', 'id'), (SELECT max(id) FROM members))",
    "SELECT setval(pg_get_serial_sequence('lots', 'id'), (SELECT max(id) FROM lots))",
    "ANALYZE",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--per-member", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2,
                        help="workers at once, as two `kopilka worker` would run")  # fmt: skip
    options = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        apply_program(engine, load_document(PROGRAM), actor="bench", now=NOW)
        started = time.perf_counter()
        with engine.begin() as connection:
            program = connection.execute(text("SELECT id FROM programs")).scalar_one()
            values = {"program": program, "members": options.lots // options.per_member,
                      "per_member": options.per_member, "lots": options.lots,
                      "earned": NOW - timedelta(days=400),
                      "expires": NOW - timedelta(days=35)}  # fmt: skip
            for statement in FILL:
                connection.execute(text(statement), values)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        burned = sum(_in_parallel(options.workers, lambda: expire_due_points(engine, now=NOW)))
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        discrepancies = verify(engine)[1]
        verified = time.perf_counter() - started
        print(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}",
            "lots": options.lots, "members": values["members"], "fill_s": round(filled, 1),
            "workers": options.workers,
            "expired": burned, "expiry_s": round(seconds, 2),
            "lots_per_s": round(burned / seconds), "verify_s": round(verified, 1),
            "verify_discrepancies": len(discrepancies),
        }, indent=2))  # fmt: skip
        if burned != options.lots or discrepancies:
            raise SystemExit(f"not clean: {burned} burnt, {discrepancies[:3]}")
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _in_parallel(workers: int, work: Callable[[], int]) -> list[int]:
    """`work` in `workers` threads at once (each with its own connection): they share
    the members through row locks (`SKIP LOCKED`); PostgreSQL does the work, so the
    threads don't wait on Python's lock."""
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(work())) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


if __name__ == "__main__":
    main()
