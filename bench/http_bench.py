"""HTTP purchases/s and latency at 16 connections on PostgreSQL, against the same
server's trivial endpoint.

Run:  .venv/bin/python bench/http_bench.py           (make bench-http; ~3 minutes)
      .venv/bin/python bench/http_bench.py --quick   (a smoke run, ~30 s)

Needs `wrk` (Debian: `apt-get install wrk`) and PostgreSQL at $KOPILKA_BENCH_PG (default
the local `test` database; the bench works in a schema of its own, dropped afterwards).
`--db sqlite`: the same on the embedded default, a SQLite file in a temporary folder
(`--workers 1` is the choice there: see the README; "PostgreSQL" CPU then reads 0).

- The database: the café program of seed 002, 1,000 members with points (as in
  bench/purchase_bench.py).
- The server: bench/http_server.py, served as `kopilka serve --workers N` serves (a
  separate process tree), with Kopilka's app and one trivial endpoint
  (`POST /bench/echo`, which parses the same body and answers a small document).
- The load: wrk (2 threads, 16 connections) from its own process, with
  bench/http_purchase.lua: distinct 2-line receipts from a pos key at the kiosk, members
  spread, one in five paying 1.00 with points.
- Rounds alternate the trivial endpoint and purchases so both see the same machine;
  figures are medians of the rounds. Each round also reads, from /proc, the CPU time the
  server's processes and PostgreSQL's spent during it: CPU µs per request of each (the
  split of a purchase's cost between the server and the database). Afterwards every
  purchase answered 201 must be in the database exactly once, and `verify` must find
  the ledger balanced.
- `--engagement` (issue 18): each round also runs the purchases again under the program
  with three stamp cards and two challenges (bench/round_trips.py's, applied as the
  program's next version before that load and taken back after it), so the same sitting
  says what engagement mechanics cost: `engaged_per_s` against `purchases_per_s`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from purchase_bench import NOW, PROGRAM, database  # type: ignore[import-not-found]
from round_trips import CHALLENGES, STAMP_CARDS  # type: ignore[import-not-found]
from sqlalchemy import func, select

from kopilka.ledger.verify import verify
from kopilka.operators.keys import create_key
from kopilka.platform.files import load_document
from kopilka.platform.tables import purchases
from kopilka.programs.handlers import apply_program

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "http_purchase.lua"
MEMBERS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--db",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="sqlite: the embedded default, a file in a temporary folder",
    )
    parser.add_argument("--engagement", action="store_true",
                        help="also purchases under 3 stamp cards and 2 challenges")  # fmt: skip
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE before each round (where autovacuum is off)",
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    seconds, rounds = (8, 2) if options.quick else (12, 3)
    with tempfile.TemporaryDirectory() as folder, database(options.db, MEMBERS,
                                                           Path(folder)) as db:  # fmt: skip
        engine = db.engine()
        key = create_key(engine, "zerno", "pos", location="kiosk", now=NOW)[0]
        url = db.url if db.schema is None else f"{db.url}?options=-csearch_path%3D{db.schema}"
        port = 18000 + os.getpid() % 1000
        server = start_server(url, port, options.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            load = Load(base, key, options.connections, server.pid)
            load.run("/bench/echo", 3, "warm")  # both paths warm before anything counts
            load.run("/v1/programs/zerno/purchases", 3, "warm")
            echo, bought, engaged = [], [], []
            plain = load_document(PROGRAM)
            assert isinstance(plain, dict)
            with_engagement = {**plain, "stamp_cards": STAMP_CARDS, "challenges": CHALLENGES}
            if options.engagement:  # both versions warm in the server before anything counts
                apply_program(engine, with_engagement, actor="bench", now=NOW)
                load.run("/v1/programs/zerno/purchases", 3, "warm")
                apply_program(engine, plain, actor="bench", now=NOW)
                load.run("/v1/programs/zerno/purchases", 2, "warm")
            for n in range(rounds):
                if options.vacuum:  # what autovacuum would have done meanwhile
                    with engine.connect() as connection:
                        connection.execution_options(isolation_level="AUTOCOMMIT")
                        connection.exec_driver_sql("VACUUM ANALYZE")
                echo.append(load.run("/bench/echo", seconds, f"e{n}"))
                bought.append(load.run("/v1/programs/zerno/purchases", seconds, f"p{n}"))
                if options.engagement:
                    apply_program(engine, with_engagement, actor="bench", now=NOW)
                    engaged.append(load.run("/v1/programs/zerno/purchases", seconds, f"s{n}"))
                    apply_program(engine, plain, actor="bench", now=NOW)
        finally:
            server.terminate()
            server.wait(timeout=30)
        answered = sum(int(r["statuses"].get("201", 0)) for r in load.purchase_results)
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(purchases)).scalar()
        report = verify(engine)[1]
        engine.dispose()
    summarise(echo, bought, answered, int(stored or 0), report, options, engaged)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes `pids` have used so far (those gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (after the comm)
    return total / tick


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (the server's workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue += [int(child) for child in task.read_text().split()]
    return found


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class Load:
    def __init__(self, base: str, key: str, connections: int, server: int) -> None:
        self.base, self.key, self.connections = base, key, connections
        self.server = server
        self.purchase_results: list[dict[str, Any]] = []

    def run(self, path: str, seconds: int, run: str) -> dict[str, Any]:
        env = {**os.environ, "KOPILKA_KEY": self.key, "KOPILKA_MEMBERS": str(MEMBERS),
               "KOPILKA_RUN": f"{run}-{uuid.uuid4().hex[:6]}"}  # fmt: skip
        server, postgres = tree(self.server), postgres_pids()
        before = cpu_seconds(server), cpu_seconds(postgres)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(LUA), self.base + path],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        line = next(line for line in out.splitlines() if line.startswith("RESULT "))
        result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
        result["rate"] = result["requests"] / result["seconds"]
        after = cpu_seconds(server), cpu_seconds(postgres)
        requests = max(int(result["requests"]), 1)
        result["server_cpu_us"] = (after[0] - before[0]) * 1e6 / requests
        result["postgres_cpu_us"] = (after[1] - before[1]) * 1e6 / requests
        if "purchases" in path:
            self.purchase_results.append(result)
        print(f"  {run:>5} {path:<32} {result['rate']:8.0f}/s  p50 {result['p50_ms']:6.2f} ms"
              f"  p99 {result['p99_ms']:6.2f} ms  CPU µs/request: server "
              f"{result['server_cpu_us']:5.0f}, PostgreSQL {result['postgres_cpu_us']:5.0f}"
              f"  {result['statuses']}", flush=True)  # fmt: skip
        return result


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "http_server.py"), str(port), str(workers)],
        cwd=ROOT, env={**os.environ, "KOPILKA_DB": url, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not become ready")


def summarise(echo: list[dict[str, Any]], bought: list[dict[str, Any]], answered: int,
              stored: int, report: list[Any], options: Any,
              engaged: list[dict[str, Any]]) -> None:  # fmt: skip
    def median(rounds: list[dict[str, Any]], field: str) -> float:
        return float(statistics.median(r[field] for r in rounds))

    errors = sum(r["errors"] for r in bought)
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "workers": options.workers,
        "connections": options.connections,
        "echo_per_s": round(median(echo, "rate")),
        "echo_p99_ms": round(median(echo, "p99_ms"), 2),
        "purchases_per_s": round(median(bought, "rate")),
        "purchase_p50_ms": round(median(bought, "p50_ms"), 2),
        "purchase_p99_ms": round(median(bought, "p99_ms"), 2),
        "purchases_vs_echo": round(median(bought, "rate") / median(echo, "rate"), 3),
        "purchase_server_cpu_us": round(median(bought, "server_cpu_us")),
        "purchase_postgres_cpu_us": round(median(bought, "postgres_cpu_us")),
        "purchase_rounds": [round(r["rate"]) for r in bought],
        "non_2xx_or_socket_errors": errors,
        "answered_201": answered,
        "stored": stored,
        "verify_discrepancies": len(report),
    }
    if engaged:
        figures |= {
            "engaged_per_s": round(median(engaged, "rate")),
            "engaged_vs_purchases": round(median(engaged, "rate") / median(bought, "rate"), 3),
            "engaged_p99_ms": round(median(engaged, "p99_ms"), 2),
            "engaged_server_cpu_us": round(median(engaged, "server_cpu_us")),
            "engaged_postgres_cpu_us": round(median(engaged, "postgres_cpu_us")),
            "engaged_rounds": [round(r["rate"]) for r in engaged],
        }
    print(json.dumps(figures, indent=2))
    if errors or report or stored < answered:
        sys.exit("the run was not clean: see the figures above")


if __name__ == "__main__":
    main()
