"""How long the console's and the member page's pages take on the demo's data.

Run:  .venv/bin/python bench/console_bench.py            (or `make bench-console`)
      .venv/bin/python bench/console_bench.py --rounds 5 --db URL   (an empty database)

The demo program (1,000 members, 20,000 receipts over 90 days) is built in a fresh
database (SQLite in a temporary folder by default); then each page is asked for
`--rounds` times in turn through the real app in-process (routing, sessions, templates,
queries; no network), signed in as the demo's admin. Printed: the median and the
slowest milliseconds of each page. The goal: a support agent answers "why didn't I get
my bonus?" in seconds, so every page well under one second — each median under 300 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from kopilka.demo import DEMO_OPERATOR, PROGRAM, build_demo
from kopilka.members.links import member_link
from kopilka.platform.db import make_engine
from kopilka.platform.http.app import create_app
from kopilka.platform.migrate import upgrade
from kopilka.platform.tables import purchases

SECRET = "a bench secret"
GOAL_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--db", help="a database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(args.db or f"sqlite:///{folder}/console-bench.sqlite3")
        upgrade(engine)
        try:
            _run(engine, args.rounds)
        finally:
            engine.dispose()


def _run(engine: Engine, rounds: int) -> None:
    started = time.perf_counter()
    demo = build_demo(engine, now=datetime.now(UTC))
    assert demo.operator is not None
    print(f"demo built in {time.perf_counter() - started:.0f} s: {demo.members} members, "
          f"{demo.receipts} purchases; {platform.python_implementation()} "
          f"{platform.python_version()}, {rounds} rounds")  # fmt: skip
    os.environ["KOPILKA_SECRET"] = SECRET  # the member page's links are signed with it
    app = create_app(engine)
    pages = _pages(engine, demo.sample_member)
    with TestClient(app, base_url="http://bench") as client:
        _sign_in(client, *demo.operator)
        timings: dict[str, list[float]] = {name: [] for name in pages}
        for _ in range(rounds):
            for name, path in pages.items():
                began = time.perf_counter()
                answer = client.get(path)
                timings[name].append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 200, (name, answer.status_code)
    print(f"{'page':<34}{'median ms':>10}{'slowest':>10}")
    for name, taken in timings.items():
        median = statistics.median(taken)
        mark = "" if median < GOAL_MS else "  over the goal"
        print(f"{name:<34}{median:>10.1f}{max(taken):>10.1f}{mark}")


def _pages(engine: Engine, member: str) -> dict[str, str]:
    with engine.connect() as connection:
        purchase = connection.execute(select(purchases.c.id).order_by(purchases.c.id.desc())
                                      .limit(1)).scalar_one()  # fmt: skip
    link = member_link(engine, PROGRAM, member, base_url="http://bench", secret=SECRET,
                       now=datetime.now(UTC))  # fmt: skip
    base = f"/console/{PROGRAM}"
    return {
        "dashboard": f"{base}/",
        "member search (a name)": f"{base}/members?q=Ан",
        "a busy member's profile": f"{base}/members/{member}",
        "a purchase explained (htmx)": f"{base}/purchases/{purchase}",
        "rules editor": f"{base}/rules",
        "coupons": f"{base}/coupons",
        "audit log": f"{base}/audit",
        "member page (/m/…)": link.removeprefix("http://bench"),
    }


def _sign_in(client: TestClient, email: str, password: str) -> None:
    page = client.get("/console/login").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    answer = client.post("/console/login", data={"csrf": found.group(1), "program": PROGRAM,
                                                 "email": email, "password": password})  # fmt: skip
    assert answer.status_code == 200, answer.status_code
    assert email == DEMO_OPERATOR


if __name__ == "__main__":
    main()
