"""The coupon routes (issue 7); mounted by `kopilka.api.app.create_app`."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine


def register(app: FastAPI, engine: Engine) -> None:
    """Add the coupon routes to `app`."""
