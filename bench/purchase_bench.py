"""How many purchases a second does the service layer write, against pgbench doing the same?

Run:  .venv/bin/python bench/purchase_bench.py        (or `make bench-purchase`)
      .venv/bin/python bench/purchase_bench.py --quick  (a smoke run of a few seconds)

For each database (SQLite in a temporary file; PostgreSQL at $KOPILKA_BENCH_PG, default
the local `test` database, in a schema of its own that is dropped afterwards):

- service: N worker processes (1 and 16) each call `process_purchase` in a loop for a
  fixed time, after a common start. Purchases are 2-line café receipts spread over
  1,000 members; one in five pays 1.00 with points. Figure: purchases/s (all workers).
- pgbench, on the same PostgreSQL, in the same run, at the same client counts, against
  a copy of the same schema (tables, indexes, foreign keys) filled the same way:
  `multi`: BEGIN; lock the member's balances (SELECT … FOR UPDATE); insert the purchase
           (a ~1 KB JSON answer, ON CONFLICT DO NOTHING); insert the transfer; update
           the balance; insert the lot; COMMIT — what the service does, statement by
           statement;
  `cte`:   the same writes as one statement (data-modifying CTEs), autocommit.
  Figure: the ratio service / pgbench at 16 clients (goal of issue 4: ≥ 0.5).
- round trips per purchase: statements, BEGINs and COMMITs the service sends, counted
  with SQLAlchemy events over a few hundred purchases, accrual-only and with points.

Repetitions alternate service and pgbench so that both see the same machine; medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from kopilka.checkout.purchases import process_purchase
from kopilka.members.balances import adjust
from kopilka.members.handlers import register_member
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.platform.migrate import upgrade
from kopilka.programs.handlers import apply_program

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "zerno" / "program.yaml"
PG_URL = os.environ.get("KOPILKA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LINES = [
    [{"sku": "CAP-300", "qty": 1}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "TEA-400", "qty": 2}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "LUNCH-1", "qty": 1}, {"sku": "ESP-60", "qty": 1}],
    [{"sku": "SOUP-1", "qty": 1}, {"sku": "TEA-400", "qty": 1}],
]


@dataclass(frozen=True)
class Database:
    name: str  # "sqlite" or "postgresql"
    url: str
    schema: str | None  # PostgreSQL: the schema holding the bench's tables

    def engine(self, **options: Any) -> Engine:
        if self.schema is None:
            return make_engine(self.url, **options)
        return make_engine(
            self.url, connect_args={"options": f"-csearch_path={self.schema}"}, **options
        )


# — setting up —


@contextmanager
def database(name: str, members: int, folder: Path) -> Iterator[Database]:
    """A fresh database holding the café's program and `members` members with points."""
    if name == "sqlite":
        db = Database(name, f"sqlite:///{folder / 'bench.sqlite3'}", None)
        fill(db, members)
        yield db
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        db = Database(name, PG_URL, schema)
        fill(db, members)
        yield db
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def fill(db: Database, members: int) -> None:
    engine = db.engine()
    upgrade(engine)
    apply_program(engine, load_document(PROGRAM), actor="bench", now=NOW)
    for n in range(members):
        member = register_member(engine, "zerno", {}, now=NOW)
        if n == 0:
            assert member["id"] == "1", "member ids must run 1..N (pgbench picks them so)"
        adjust(engine, "zerno", member["id"], {"points": "1000000", "reason": "bench"},
               actor="bench", now=NOW)  # fmt: skip
    with engine.begin() as connection:  # statistics, as a database in service has them
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def body(worker: int, n: int, members: int, run: str) -> dict[str, Any]:
    """The n-th receipt of a worker: members and baskets spread, one in five pays with points."""
    receipt: dict[str, Any] = {
        "receipt_id": f"{run}-{worker}-{n}",
        "location": "kiosk",
        "member": str(1 + (worker * 7919 + n * 104729) % members),
        "lines": LINES[n % len(LINES)],
    }
    if n % 5 == 4:
        receipt["redeem"] = "1.00"
    return receipt


# — the service, in worker processes —


def service_worker(
    db: Database, worker: int, members: int, run: str, seconds: float, ready: Any, go: Any,
    results: Any,
) -> None:  # fmt: skip
    engine = db.engine(pool_size=1, max_overflow=0)
    for n in range(-5, 0):  # warm: connected, program compiled, statements prepared
        process_purchase(engine, "zerno", body(worker, n, members, run), now=NOW, actor="bench")
    ready.put(worker)
    go.wait()  # every worker starts when the last one is ready
    done, cpu, stop_at = 0, time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        process_purchase(engine, "zerno", body(worker, done, members, run), now=NOW,
                         actor="bench")  # fmt: skip
        done += 1
    results.put((done, time.process_time() - cpu))
    engine.dispose()


def run_service(db: Database, workers: int, members: int, seconds: float) -> tuple[float, float]:
    """Purchases per second over all workers, and CPU µs per purchase."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    run = uuid.uuid4().hex[:6]
    processes = [
        context.Process(target=service_worker,
                        args=(db, w, members, run, seconds, ready, go, results))
        for w in range(workers)
    ]  # fmt: skip
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    go.set()
    counts = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    total = sum(done for done, _ in counts)
    cpu = sum(spent for _, spent in counts)
    return total / seconds, cpu / max(total, 1) * 1e6


# — round trips —


def round_trips(db: Database, members: int, purchases: int = 300) -> dict[str, float]:
    """Round trips per purchase, accrual-only and paying with points.

    On PostgreSQL, counted in psycopg (which the hot path reaches around SQLAlchemy
    too): each statement or transaction command sent on its own, and each pipeline
    (statements sent together, answered together) once. On SQLite, in-process, each
    statement (SQLAlchemy's `before_cursor_execute`)."""
    engine = db.engine()
    counted = [0]
    restore: list[tuple[Any, str, Any]] = []
    if db.name == "postgresql":
        import psycopg
        from psycopg._pipeline import Pipeline

        def counting(owner: Any, name: str, connection_of: Any) -> None:
            original = getattr(owner, name)

            def counted_call(self: Any, *args: Any, **kwargs: Any) -> Any:
                if connection_of(self) is None or connection_of(self)._pipeline is None:
                    counted[0] += 1
                return original(self, *args, **kwargs)

            restore.append((owner, name, original))
            setattr(owner, name, counted_call)

        counting(psycopg.Cursor, "execute", lambda cursor: cursor.connection)
        counting(psycopg.Connection, "_exec_command", lambda connection: connection)  # BEGIN…
        counting(Pipeline, "__exit__", lambda _: None)  # the pipeline's one exchange
    else:

        @event.listens_for(engine, "before_cursor_execute")
        def statement(*_: Any) -> None:
            counted[0] += 1

    run = uuid.uuid4().hex[:6]
    figures: dict[str, float] = {}
    for kind, pays in (("accrual", False), ("paying with points", True)):
        bodies = [body(99, n, members, run) for n in range(purchases * 5)]
        chosen = [b for b in bodies if ("redeem" in b) == pays][:purchases]
        for warm in chosen[:20]:
            process_purchase(engine, "zerno", {**warm, "receipt_id": "w" + warm["receipt_id"]},
                             now=NOW, actor="bench")  # fmt: skip
        counted[0] = 0
        for receipt in chosen:
            process_purchase(engine, "zerno", receipt, now=NOW, actor="bench")
        figures[kind] = counted[0] / len(chosen)
    for owner, name, original in restore:
        setattr(owner, name, original)
    engine.dispose()
    return figures


# — pgbench —

# pgbench variables, typed: prepared statements can't infer a type from `||` or a subquery
M, ID = "CAST(:m AS integer)", "CAST(:id AS integer)"
TRANSFER_COLUMNS = (
    "program_id, transfer_key, debit_account_id, credit_account_id, amount, reason, actor,"
    " purchase_id, created_at"
)
LOT_COLUMNS = (
    "program_id, member_id, status, amount, remaining, earned_at, available_at, expires_at,"
    " purchase_id, reason"
)


def key(purchase_id: str) -> str:
    """The transfer key `zerno:purchase:<id>:accrue`, its colons spelled `chr(58)`: pgbench
    reads `:name` as a variable even inside a string."""
    return f"concat_ws(chr(58), 'zerno', 'purchase', {purchase_id}, 'accrue')"


def pgbench_scripts(answer: dict[str, Any]) -> dict[str, str]:
    """The two pgbench scripts; `answer` is a real purchase answer, stored as the JSON."""
    document = json.dumps(answer, ensure_ascii=False).replace("'", "''")
    purchase = (
        "INSERT INTO purchases (program_id, program_version_id, location, receipt_id,"
        " member_id, request_hash, status, answer, lines, created_at)"
        f" VALUES (1, 1, 'kiosk', gen_random_uuid()::text, {M}, md5(random()::text),"
        f" 'completed', '{document}', '[{{\"n\": 0, \"qty\": \"1\"}}]', now())"
        " ON CONFLICT (program_id, location, receipt_id) DO NOTHING RETURNING id"
    )
    owner = f"program_id = 1 AND owner = 'member:' || {M}"
    account = f"(SELECT id FROM accounts WHERE {owner} AND code = 'available')"
    issuance = (
        "(SELECT id FROM accounts WHERE program_id = 1 AND owner = 'program' AND code = 'issuance')"
    )
    multi = [
        "BEGIN;",
        f"SELECT id, debits_posted, credits_posted FROM accounts WHERE {owner}"
        " ORDER BY id FOR UPDATE;",
        purchase + " \\gset",
        f"INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES (1, {key(ID)}, {issuance},"
        f" {account}, 320, 'purchase.accrual', 'pgbench', {ID}, now());",
        f"UPDATE accounts SET credits_posted = credits_posted + 320 WHERE id = {account};",
        f"INSERT INTO lots ({LOT_COLUMNS}) VALUES (1, {M}, 'available', 320, 320, now(),"
        f" now(), now() + interval '365 days', {ID}, 'purchase.accrual');",
        "END;",
    ]
    cte = (
        f"WITH parent AS ({purchase}),"
        f" moved AS (INSERT INTO transfers ({TRANSFER_COLUMNS}) SELECT 1, {key('parent.id')},"
        f" {issuance}, {account}, 320, 'purchase.accrual',"
        " 'pgbench', parent.id, now() FROM parent),"
        " totalled AS (UPDATE accounts SET credits_posted = credits_posted + 320"
        f" WHERE id = {account} AND EXISTS (SELECT 1 FROM parent)),"
        f" earned AS (INSERT INTO lots ({LOT_COLUMNS}) SELECT 1, {M}, 'available', 320, 320,"
        " now(), now(), now() + interval '365 days', parent.id, 'purchase.accrual'"
        " FROM parent)"
        " SELECT id FROM parent;"
    )
    setup = "\\set m random(1, :members)"
    return {"multi": "\n".join([setup, *multi]) + "\n", "cte": f"{setup}\n{cte}\n"}


def run_pgbench(db: Database, script: Path, clients: int, members: int, seconds: float) -> float:
    url = db.url.replace("postgresql+psycopg://", "postgresql://")
    environment = {**os.environ, "PGOPTIONS": f"-c search_path={db.schema}"}
    result = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
         "-T", str(max(1, round(seconds))), "-D", f"members={members}", "-f", str(script), url],
        capture_output=True, text=True, env=environment, check=False,
    )  # fmt: skip
    found = re.search(r"tps = ([\d.]+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if result.returncode != 0 or found is None or (failed and int(failed.group(1))):
        raise SystemExit(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    return float(found.group(1))


# — the run —


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--workers", default="1,16", help="worker processes / pgbench clients")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s, 1 repetition")
    options = parser.parse_args()
    if options.quick:
        options.seconds, options.repeat, options.members = 2.0, 1, 50
    workers = [int(n) for n in options.workers.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name in options.db.split(","):
            with database(name, options.members, Path(folder)) as db:
                measure(db, workers, options, Path(folder))


def measure(db: Database, workers: list[int], options: Any, folder: Path) -> None:
    trips = round_trips(db, options.members, 60 if options.quick else 300)
    what = "statements and commands sent apart" if db.name == "postgresql" else "statements"
    print(f"\n{db.name}: round trips per purchase ({what}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in trips.items()))  # fmt: skip
    scripts: dict[str, Path] = {}
    if db.name == "postgresql":
        engine = db.engine()
        answer = process_purchase(engine, "zerno", body(0, 10**6, options.members, "x"),
                                  now=NOW, actor="bench").answer  # fmt: skip
        engine.dispose()
        for kind, sql in pgbench_scripts(answer).items():
            scripts[kind] = folder / f"{kind}.sql"
            scripts[kind].write_text(sql, encoding="utf-8")
    figures: dict[tuple[str, int], list[float]] = {}
    for _ in range(options.repeat):
        for count in workers:
            rate, cpu = run_service(db, count, options.members, options.seconds)
            figures.setdefault(("service", count), []).append(rate)
            figures.setdefault(("cpu", count), []).append(cpu)
            for kind, script in scripts.items():
                tps = run_pgbench(db, script, count, options.members, options.seconds)
                figures.setdefault((kind, count), []).append(tps)
    print(f"{'workers':>8} {'service/s':>10} {'CPU µs':>8} {'pgbench multi':>14} "
          f"{'pgbench cte':>12} {'÷ multi':>8} {'÷ cte':>6}")  # fmt: skip
    for count in workers:
        service = statistics.median(figures[("service", count)])
        cpu = statistics.median(figures[("cpu", count)])
        line = f"{count:>8} {service:>10.0f} {cpu:>8.0f}"
        if scripts:
            multi = statistics.median(figures[("multi", count)])
            cte = statistics.median(figures[("cte", count)])
            line += f" {multi:>14.0f} {cte:>12.0f} {service / multi:>8.2f} {service / cte:>6.2f}"
        print(line, "  runs:", " ".join(f"{r:.0f}" for r in figures[("service", count)]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
