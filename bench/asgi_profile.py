"""Where a purchase's server-side Python goes: the app called in-process over ASGI.

Run:  .venv/bin/python bench/asgi_profile.py [--db sqlite] [--n 2000] [--profile FILE]
                                             [--engagement]

No HTTP server and no load generator: one caller sends café purchases (the receipts
of bench/http_purchase.lua) straight to Kopilka's ASGI app, one after the other, on
PostgreSQL ($KOPILKA_BENCH_PG) or SQLite. Figures: the process's CPU µs per purchase
and wall µs per purchase (medians of 5 rounds) — the Python a purchase costs the
server, less uvicorn's share. `--profile FILE` writes a cProfile of one more round.
`--engagement`: under the program with 3 stamp cards and 2 challenges
(bench/round_trips.py's), what the engagement mechanics cost in Python.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from purchase_bench import NOW, PROGRAM, database  # type: ignore[import-not-found]
from round_trips import CHALLENGES, STAMP_CARDS  # type: ignore[import-not-found]
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.operators.keys import create_key
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app
from kopilka.programs.handlers import apply_program

MEMBERS = 1000
BASKETS = [
    [{"sku": "CAP-300", "qty": 1}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "TEA-400", "qty": 2}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "LUNCH-1", "qty": 1}, {"sku": "ESP-60", "qty": 1}],
    [{"sku": "SOUP-1", "qty": 1}, {"sku": "TEA-400", "qty": 1}],
]


def receipt(run: str, n: int) -> bytes:
    member = str(1 + n * 104729 % MEMBERS)
    body: dict[str, Any] = {"receipt_id": f"{run}-{n}", "location": "kiosk",
                            "member": member, "lines": BASKETS[n % 4]}  # fmt: skip
    if n % 5 == 4:
        body["redeem"] = "1.00"
    return json.dumps(body).encode()


class Caller:
    """Sends one request to an ASGI app and returns its status."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
                        (b"authorization", f"Bearer {key}".encode())]  # fmt: skip

    async def post(self, path: str, body: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"",
                 "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}  # fmt: skip
        status = 0
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def rounds(caller: Caller, count: int, number: int, profile: str | None,
                 vacuum: Callable[[], None]) -> list[tuple[float, float, float]]:  # fmt: skip
    path = "/v1/programs/zerno/purchases"
    figures = []
    for r in range(number + (1 if profile else 0)):
        vacuum()
        profiler = cProfile.Profile() if profile and r == number else None
        if profiler:
            profiler.enable()
        cpu, wall, sys_ = time.process_time(), time.perf_counter(), os.times().system
        for n in range(count):
            status = await caller.post(path, receipt(f"r{r}", n))
            assert status == 201, status
        cpu, wall, sys_ = (
            time.process_time() - cpu,
            time.perf_counter() - wall,
            os.times().system - sys_,
        )
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        else:
            figures.append((cpu * 1e6 / count, wall * 1e6 / count, sys_ * 1e6 / count))
    return figures


def vacuum(engine: Engine) -> None:
    """What autovacuum would have done by now (it is off on this machine): without it
    PostgreSQL slows as the run goes, and so does the wait on it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--n", type=int, default=1000, help="purchases per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one more round here")
    parser.add_argument("--engagement", action="store_true",
                        help="3 stamp cards and 2 challenges (issue 18)")  # fmt: skip
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(options.db, MEMBERS, Path(folder)) as db:
        key = create_key(db.engine(), "zerno", "pos", location="kiosk", now=NOW)[0]
        if options.engagement:
            document = load_document(PROGRAM)
            assert isinstance(document, dict)
            apply_program(
                db.engine(),
                {**document, "stamp_cards": STAMP_CARDS, "challenges": CHALLENGES},
                actor="bench",
                now=NOW,
            )
        url = db.url if db.schema is None else f"{db.url}?options=-csearch_path%3D{db.schema}"

        async def run() -> list[tuple[float, float, float]]:
            engine = make_engine(url, asynchronous=True, pool_size=2, max_overflow=0)
            app = create_app(engine)
            caller = Caller(app, key)
            for n in range(200):  # warm
                await caller.post("/v1/programs/zerno/purchases", receipt("warm", n))
            try:
                return await rounds(caller, options.n, options.rounds, options.profile,
                                    lambda: vacuum(db.engine()))  # fmt: skip
            finally:
                await AsyncEngine(engine).dispose()

        figures = asyncio.run(run())
    cpu = statistics.median(f[0] for f in figures)
    wall = statistics.median(f[1] for f in figures)
    print(json.dumps({"db": options.db, "cpu_us_per_purchase": round(cpu),
                      "of_which_kernel_us": round(statistics.median(f[2] for f in figures)),
                      "wall_us_per_purchase": round(wall),
                      "rounds_cpu_us": [round(f[0]) for f in figures]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
