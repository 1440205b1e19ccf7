"""Bounded memos for the calculator's hot path."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Enough for every (rules, category) combination a large chain meets in a day; a memo
# that fills up is cleared whole, which is cheaper than LRU bookkeeping on every hit.
CACHE_LIMIT = 65_536


def remember(cache: dict[K, V], key: K, value: V) -> None:
    """Store in a bounded memo: cleared whole when full, so memory stays flat."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
