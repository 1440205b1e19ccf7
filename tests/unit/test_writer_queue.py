"""The SQLite writers of one process take their turns in the order they asked for them."""

from __future__ import annotations

import threading
import time

from kopilka.platform.db import WriterQueue


def test_writers_are_served_in_the_order_they_came() -> None:
    queue = WriterQueue()
    queue.acquire()
    order: list[int] = []

    def writer(n: int) -> None:
        queue.acquire()
        order.append(n)
        queue.release()

    threads = []
    for n in range(5):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        while len(queue._waiting) < n + 1:  # in the queue before the next one comes
            time.sleep(0.001)
    queue.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]


def test_the_holder_may_take_its_turn_again() -> None:
    queue = WriterQueue()
    queue.acquire()
    queue.acquire()  # a use case inside another's turn: no deadlock
    queue.release()
    taken = threading.Event()

    def other() -> None:
        queue.acquire()
        taken.set()
        queue.release()

    thread = threading.Thread(target=other)
    thread.start()
    assert not taken.wait(0.05)  # still held once
    queue.release()
    assert taken.wait(5)
    thread.join(timeout=5)
