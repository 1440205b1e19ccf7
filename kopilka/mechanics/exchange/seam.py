"""The saga's test seam: a hook every step calls once it is reached.

Each step of an exchange is its own transaction; the handlers call `reached(program,
step, transaction_id)` at each point where a process could die between two steps:

    source  "hold"       the hold is committed; the credit not asked yet
    target  "credit"     inside the credit's transaction, before its commit
    target  "credited"   the credit is committed; the source not told yet
    source  "settled"    the confirm (or the reversal) is committed

A hook that raises there stops the work as a killed process would (a raise inside the
credit's transaction rolls it back, as a crash before the commit does); the worker then
finishes or reverses what was left. The tests kill the saga at every step this way —
the database is real, nothing of it is mocked. No hook is installed outside tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Hook = Callable[[str, str, str], None]  # (program, step, transaction id)
_hooks: list[Hook] = []


def reached(program: str, step: str, transaction_id: str) -> None:
    for hook in list(_hooks):
        hook(program, step, transaction_id)


@contextmanager
def hooked(hook: Hook) -> Iterator[None]:
    """Install `hook` while the block runs."""
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)
