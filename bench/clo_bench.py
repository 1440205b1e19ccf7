"""A bank's card-transaction feed against 10,000 card-linked offers on Dask, at 1 and 2
workers (issue 20; goal: ≥ 1.7× from 1 to 2 workers).

Run:  .venv/bin/python bench/clo_bench.py                           (10,000,000 messages)
      .venv/bin/python bench/clo_bench.py --transactions 1000000    (a smaller feed)

The world and the feed come from bench/clo_feed.py (seeded): 10,000 offers of 3,334
merchants, one card per 20 messages; the feed is written to Parquet first (its generation
timed apart). Then, in one run, on two local clusters made beforehand (their start-up
not counted) — one of 1 worker process, one of 2, each single-threaded — `run_batch`
reads the Parquet file on the workers, takes it by card and settles it by offer, with
the changes kept as a table (`collect=False`: at this size the day's judged messages
stay on the workers). The runs alternate 1, 2, 1, 2 … (`--repeats` each); figures are
medians. Checked: every run's digest of the changes (in the online path's order) is the
same. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find bench/

from bench.clo_feed import make_world, write_feed
from kopilka.mechanics.card_offers import batch
from kopilka.mechanics.card_offers.batch import local_cluster, run_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--placement", choices=("balanced", "scheduler"), default="balanced",
                        help="partitions placed by the batch, or by Dask's scheduler")  # fmt: skip
    parser.add_argument("--directory", default=None, help="where the Parquet feed is written")
    arguments = parser.parse_args()
    batch.PLACE_PARTITIONS = arguments.placement == "balanced"
    directory = Path(arguments.directory or tempfile.mkdtemp(prefix="clo-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"feed-{arguments.transactions}.parquet"

    started = time.perf_counter()
    cards = max(1_000, arguments.transactions // 20)
    generated = make_world(arguments.seed, offers=arguments.offers, cards=cards)
    world_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rows = write_feed(path, generated, arguments.transactions, arguments.seed)
    feed_seconds = time.perf_counter() - started
    print(f"world {world_seconds:.1f} s, feed of {rows:,} messages {feed_seconds:.1f} s",
          file=sys.stderr)  # fmt: skip

    load_before = os.getloadavg()
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}  # CPU seconds the workers spent
    digests: set[str] = set()
    summary: dict[str, Any] = {}
    clusters = {workers: local_cluster(workers) for workers in (1, 2)}
    clients = {workers: Client(cluster) for workers, cluster in clusters.items()}  # type: ignore[no-untyped-call]
    try:
        for repeat in range(arguments.repeats):
            for workers in (1, 2):
                cpu_before = _cpu_seconds(clients[workers])
                started = time.perf_counter()
                result = run_batch(generated.world, path, client=clients[workers],
                                   partitions=arguments.partitions, collect=False)  # fmt: skip
                seconds = time.perf_counter() - started
                times[workers].append(seconds)
                cpu[workers].append(_cpu_seconds(clients[workers]) - cpu_before)
                digests.add(result.digest())
                changes = result.change_table().num_rows
                summary = {"messages": result.messages, "matched": result.matched,
                           "claims": result.claims, "changes": changes}  # fmt: skip
                print(f"run {repeat + 1}, {workers} worker(s): {seconds:.1f} s, "
                      f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)  # fmt: skip
    finally:
        for client in clients.values():
            client.close()  # type: ignore[no-untyped-call]
        for cluster in clusters.values():
            cluster.close()
    one, two = statistics.median(times[1]), statistics.median(times[2])
    report = {
        "transactions": rows,
        "offers": arguments.offers,
        "cards": cards,
        "partitions": arguments.partitions,
        "placement": arguments.placement,
        **summary,
        "world_seconds": round(world_seconds, 1),
        "feed_generation_seconds": round(feed_seconds, 1),
        "seconds_1_worker": [round(value, 2) for value in times[1]],
        "seconds_2_workers": [round(value, 2) for value in times[2]],
        "median_1_worker": round(one, 2),
        "median_2_workers": round(two, 2),
        "transactions_per_second_1_worker": round(rows / one),
        "transactions_per_second_2_workers": round(rows / two),
        "transactions_per_second_per_core_1": round(rows / one),
        "transactions_per_second_per_core_2": round(rows / two / 2),
        "speedup": round(one / two, 2),
        "worker_cpu_seconds_1_worker": [round(value, 2) for value in cpu[1]],
        "worker_cpu_seconds_2_workers": [round(value, 2) for value in cpu[2]],
        "transactions_per_cpu_second_1": round(rows / statistics.median(cpu[1])),
        "transactions_per_cpu_second_2": round(rows / statistics.median(cpu[2])),
        "identical_results": len(digests) == 1,
        "digest": sorted(digests)[0][:16],
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))
    if len(digests) != 1:
        raise SystemExit("the 1-worker and 2-worker results differ")


def _cpu_seconds(client: Client) -> float:
    """The CPU time the client's workers have used so far (their own processes): with
    other work on the machine, what a run costs apart from what it waited."""
    used: dict[str, float] = client.run(time.process_time)
    return sum(used.values())


if __name__ == "__main__":
    main()
