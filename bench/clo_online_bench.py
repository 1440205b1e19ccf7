"""Card-linked offers online: the time to take one feed message through the API's handler
(`handlers.take_message`), on PostgreSQL, with the catalog of a generated world (issue 20).

Run:  .venv/bin/python bench/clo_online_bench.py                  (3,000 purchases)
      .venv/bin/python bench/clo_online_bench.py --purchases 500

In a database of its own (created and dropped): the generated world of bench/clo_feed.py
published through the handlers (tests/card_offers/test_online_equals_batch.py's
`publish`), then its feed taken one message after another, each timed from the call to
its answer (a transaction of its own: the card's row locked, its state read, the claimed
offers' budgets locked, the rows written). Reported: the median, 90th and 99th
percentile in milliseconds, and messages a second on one connection; and the queries a
message sends (counted by SQLAlchemy's `before_cursor_execute`: a pipeline counts once,
as the one round trip it is; a BEGIN or COMMIT psycopg sends by itself is not seen —
before the message's reads and writes were pipelined, that was two round trips more).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find bench/

from bench.clo_feed import make_feed, make_world
from bench.coalition_year import fresh_database
from kopilka.mechanics.card_offers import handlers
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.card_offers.test_online_equals_batch import body_of, publish
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--purchases", type=int, default=3_000)
    parser.add_argument("--offers", type=int, default=300)
    parser.add_argument("--cards", type=int, default=2_000)
    options = parser.parse_args()
    generated = make_world(20, offers=options.offers, cards=options.cards)
    messages, _truth = make_feed(generated, options.purchases, seed=20)
    with fresh_database("kopilka_bench_clo_online") as engine:
        apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="bench",
                      now=NOW)  # fmt: skip
        publish(engine, generated.world)
        queries = [0]
        event.listen(engine, "before_cursor_execute", lambda *_: queries.__setitem__(
            0, queries[0] + 1))  # fmt: skip
        moment = max(message.at for message in messages) + timedelta(days=1)
        seconds, sent = [], []
        started = time.perf_counter()
        for message in messages:
            before = queries[0]
            began = time.perf_counter()
            handlers.take_message(engine, "zerno", body_of(message), now=moment)
            seconds.append(time.perf_counter() - began)
            sent.append(queries[0] - before)
        wall = time.perf_counter() - started
    cut = statistics.quantiles(seconds, n=100)
    summary: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "messages": len(messages), "offers": options.offers, "cards": options.cards,
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p90_ms": round(cut[89] * 1000, 2), "p99_ms": round(cut[98] * 1000, 2),
        "messages_per_s": round(len(messages) / wall),
        "queries_per_message_median": statistics.median(sent), "queries_max": max(sent),
    }  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
