"""What the machine's cores give pure Python: one process doing a fixed loop, then two
processes each doing the same loop at once. With two free cores each of the two takes as
long as the one did (a ceiling of 2×); less means the cores are shared (hyperthreads of
one physical core, a noisy neighbour) and no batch can scale past it.

Run:  .venv/bin/python bench/two_cores.py
"""

from __future__ import annotations

import multiprocessing
import time


def work(steps: int) -> float:
    """Seconds for `steps` rounds of dictionary and integer work (the batch's kind)."""
    started = time.perf_counter()
    counts: dict[int, int] = {}
    for step in range(steps):
        counts[step % 1000] = counts.get(step % 1000, 0) + step * 3 // 7
    return time.perf_counter() - started


def main() -> None:
    steps = 20_000_000
    alone = work(steps)
    with multiprocessing.Pool(2) as pool:
        together = pool.map(work, [steps, steps])
    print(f"1 process {alone:.2f} s; 2 at once {together[0]:.2f} / {together[1]:.2f} s; "
          f"ceiling {2 * alone / max(together):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
