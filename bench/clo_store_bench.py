"""A day's card feed run as a batch and its outcome stored (`kopilka card-batch --store`),
on PostgreSQL, against the same feed taken online one message at a time (issue 20).

Run:  .venv/bin/python bench/clo_store_bench.py                      (20,000 purchases)
      .venv/bin/python bench/clo_store_bench.py --purchases 2000 --online 2000

In a database of its own (created and dropped): the generated world of bench/clo_feed.py
published through the handlers; its feed written as JSON Lines; then `store_batch` on a
local Dask cluster of `--workers` processes (made before the timing) — the snapshot and
the admission, the batch, and the bulk store timed apart. Then, in a second database of
its own with the same world, the first `--online` messages of the same feed taken online
by `handlers.take_message`, for the rate per message. Checked: the stored answers equal
the online answers for those messages. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from distributed import Client
from sqlalchemy import Engine, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find bench/

from bench.clo_feed import make_feed, make_world
from bench.coalition_year import fresh_database
from kopilka.mechanics.card_offers import handlers
from kopilka.mechanics.card_offers.batch import BatchResult, local_cluster, run_batch
from kopilka.mechanics.card_offers.feed import Message, World
from kopilka.mechanics.card_offers.stored import store_batch
from kopilka.mechanics.card_offers.tables import clo_transactions
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.card_offers.test_online_equals_batch import body_of, publish
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--purchases", type=int, default=20_000)
    parser.add_argument("--online", type=int, default=2_000, help="messages taken online")
    parser.add_argument("--offers", type=int, default=300)
    parser.add_argument("--cards", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    generated = make_world(20, offers=options.offers, cards=options.cards)
    messages, _truth = make_feed(generated, options.purchases, seed=20)
    moment = max(message.at for message in messages) + timedelta(days=1)
    feed = Path(tempfile.mkdtemp(prefix="clo-store-")) / "feed.jsonl"
    feed.write_text("".join(json.dumps(body_of(message)) + "\n" for message in messages))
    load = os.getloadavg()
    with local_cluster(options.workers) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]

        def run(world: World, taken: list[Message]) -> BatchResult:
            return run_batch(world, taken, client=client)

        with fresh_database("kopilka_bench_clo_store") as engine:
            _publish(engine, generated.world)
            started = time.perf_counter()
            summary = store_batch(engine, "zerno", feed, now=moment, run=run)
            whole = time.perf_counter() - started
            stored = _answers(engine)
    with fresh_database("kopilka_bench_clo_store_online") as engine:
        _publish(engine, generated.world)
        started = time.perf_counter()
        online = {message.id: handlers.take_message(engine, "zerno", body_of(message),
                                                    now=moment)[0]
                  for message in messages[: options.online]}  # fmt: skip
        online_seconds = time.perf_counter() - started
    same = all(stored[key] == answer for key, answer in online.items())
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cpus",
        "messages": summary["messages"], "changes": summary["changes"],
        "workers": options.workers, "offers": options.offers, "cards": options.cards,
        "stored_seconds_all": round(whole, 2), "plan_seconds": summary["plan_seconds"],
        "batch_seconds": summary["batch_seconds"],
        "store_seconds": summary["store_seconds"],
        "stored_messages_per_s": round(summary["messages"] / whole),
        "online_messages": len(online), "online_seconds": round(online_seconds, 2),
        "online_messages_per_s": round(len(online) / online_seconds),
        "stored_answers_equal_online": same,
        "load_average_before": [round(value, 2) for value in load],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    if not same:
        raise SystemExit("the stored answers differ from the online answers")


def _publish(engine: Engine, world: World) -> None:
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="bench",
                  now=NOW)  # fmt: skip
    publish(engine, world)


def _answers(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(clo_transactions.c.transaction_id, clo_transactions.c.answer)
        )
        return {row.transaction_id: row.answer for row in rows}


if __name__ == "__main__":
    main()
