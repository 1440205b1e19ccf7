"""The coupon tables (issue 7), on the one schema `metadata` of `kopilka.store.tables`."""

from __future__ import annotations

from kopilka.store.tables import metadata

__all__ = ["metadata"]
