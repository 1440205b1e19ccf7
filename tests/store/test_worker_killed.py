"""A worker killed mid-batch (kill -9) loses and duplicates nothing: the next run finishes.

PostgreSQL, with enough lots due that the kill lands while the expiry is at work.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from bench.expiry_bench import FILL, NOW
from kopilka.ledger.verify import verify
from kopilka.platform.tables import lots, transfers
from tests.api.test_restart_safety import server_url

pytestmark = pytest.mark.slow  # workers killed and restarted

LOTS, PER_MEMBER = 200_000, 10


def test_a_killed_worker_loses_and_duplicates_nothing(zerno_engine: Engine) -> None:
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("a worker process killed on PostgreSQL")
    with zerno_engine.begin() as connection:
        program = connection.execute(text("SELECT id FROM programs")).scalar_one()
        values = {"program": program, "members": LOTS // PER_MEMBER, "per_member": PER_MEMBER,
                  "lots": LOTS, "earned": NOW - timedelta(days=400),
                  "expires": NOW - timedelta(days=35)}  # fmt: skip
        for statement in FILL:
            connection.execute(text(statement), values)
    command = [sys.executable, "-m", "kopilka.cli", "worker", "--once", "--now",
               NOW.isoformat(), "--db", server_url(zerno_engine)]  # fmt: skip
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while _burnt(zerno_engine) == 0 and worker.poll() is None:  # until it is at work
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    midway = _burnt(zerno_engine)
    assert 0 < midway < LOTS, "the kill should land mid-way"
    assert verify(zerno_engine)[1] == []  # whole batches or nothing
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert _burnt(zerno_engine) == LOTS
    with zerno_engine.connect() as connection:
        left = connection.execute(
            select(func.count()).select_from(lots).where(lots.c.remaining > 0)
        ).scalar_one()
    assert left == 0
    assert verify(zerno_engine)[1] == []


def _burnt(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(transfers).where(transfers.c.reason == "expiry")
        ).scalar_one())  # fmt: skip
