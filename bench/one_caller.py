"""One caller on an idle server, keep-alive: how long a balance and a purchase take.

Run:  .venv/bin/python bench/one_caller.py            (~1 minute)
      .venv/bin/python bench/one_caller.py --db sqlite

The server and the database are bench/http_bench.py's (the café program, 1,000 members
with points; `kopilka serve` with one worker). One client (the standard library's
`http.client`, one keep-alive connection: httpx adds ~1 ms) sends, one at a time,
`GET /health`, a member's balance and a purchase (2 lines, by card-less member id), in
turn, after a warm-up; figures are the medians (and 90th percentiles) of each, in ms, as
the client sees them. Issue 17's goal: balance ≤ 1.0 ms, purchase ≤ 1.5 ms, where
`/health` answers in 0.4–0.6 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from http_bench import MEMBERS, start_server  # type: ignore[import-not-found]
from purchase_bench import NOW, database  # type: ignore[import-not-found]

from kopilka.operators.keys import create_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--n", type=int, default=300, help="requests of each kind")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(options.db, MEMBERS,
                                                           Path(folder)) as db:  # fmt: skip
        engine = db.engine()
        key = create_key(engine, "zerno", "pos", location="kiosk", now=NOW)[0]
        engine.dispose()
        url = db.url if db.schema is None else f"{db.url}?options=-csearch_path%3D{db.schema}"
        port = 19000 + int(time.time()) % 1000
        server = start_server(url, port, 1)
        try:
            timings = measure(f"http://127.0.0.1:{port}", key, options.n)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps({"db": options.db, **timings}, indent=2))


def measure(base: str, key: str, count: int) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    taken: dict[str, list[float]] = {"health": [], "balance": [], "purchase": []}
    for n in range(-50, count):  # the first 50 warm every path
        member = str(1 + n * 7919 % MEMBERS)
        receipt = {"receipt_id": f"one-{n}", "location": "kiosk", "member": member,
                   "lines": [{"sku": "CAP-300", "qty": 1}, {"sku": "CRS-1", "qty": 1}]}  # fmt: skip
        requests = [("health", "GET", "/health", None),
                    ("balance", "GET", f"/v1/programs/zerno/members/{member}/balance", None),
                    ("purchase", "POST", "/v1/programs/zerno/purchases",
                     json.dumps(receipt).encode())]  # fmt: skip
        for name, method, path, body in requests:
            began = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            text = answer.read()
            spent = (time.perf_counter() - began) * 1000
            assert answer.status in (200, 201), (path, text)
            if n >= 0:
                taken[name].append(spent)
    connection.close()
    return {f"{name}_ms": {"median": round(statistics.median(values), 2),
                           "p90": round(statistics.quantiles(values, n=10)[-1], 2)}
            for name, values in taken.items()}  # fmt: skip


if __name__ == "__main__":
    main()
