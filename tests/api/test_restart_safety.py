"""Killing the server (`kill -9`) in the middle of a stream of purchases loses nothing and
duplicates nothing: replaying the stream with the same receipt ids settles every one.

On SQLite (a file) and PostgreSQL (a schema of its own, named in the URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from kopilka.ledger.verify import verify
from kopilka.members.handlers import register_member
from kopilka.operators.keys import create_key
from kopilka.platform.tables import purchases
from tests.api.test_schemathesis import _wait_until_up, free_port
from tests.store.conftest import NOW

pytestmark = pytest.mark.slow  # servers and PostgreSQL stopped hard mid-stream

STREAM = 200


def server_url(engine: Engine) -> str:
    """The URL a separate process opens the test's database with."""
    url = engine.url.render_as_string(hide_password=False)
    search_path = _search_path(engine)
    return f"{url}?options=-csearch_path%3D{search_path}" if search_path else url


def _search_path(engine: Engine) -> str | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SHOW search_path").scalar())


def start(url: str, port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "kopilka.cli", "serve", "--db", url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_until_up(port)
    return server


def receipt(n: int) -> dict[str, Any]:
    return {"receipt_id": f"S-{n}", "location": "kiosk", "member": "card:100009",
            "lines": [{"sku": "TEA-400", "qty": 1 + n % 3}]}  # fmt: skip


def _a_kiosk(engine: Engine) -> tuple[dict[str, str], str, Callable[[], Any]]:
    """A member and a kiosk's key on the test's database: the key's headers, the
    purchases URL, and what starts `kopilka serve` there (again after a kill)."""
    register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    key = create_key(engine, "zerno", "pos", location="kiosk", now=NOW)[0]
    port = free_port()
    return ({"Authorization": f"Bearer {key}"},
            f"http://127.0.0.1:{port}/v1/programs/zerno/purchases",
            partial(start, server_url(engine), port))  # fmt: skip


def test_a_killed_server_loses_and_duplicates_nothing(zerno_engine: Engine) -> None:
    headers, base, serve = _a_kiosk(zerno_engine)
    server = serve()
    answered: dict[int, dict[str, Any]] = {}
    halfway = threading.Event()

    def stream() -> None:
        with httpx.Client(headers=headers, timeout=10) as client:
            for n in range(STREAM):
                try:
                    response = client.post(base, json=receipt(n))
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code in (200, 201):
                    answered[n] = response.json()
                if n == STREAM // 3:
                    halfway.set()

    sender = threading.Thread(target=stream)
    sender.start()
    assert halfway.wait(60)
    server.send_signal(signal.SIGKILL)  # mid-stream, without a chance to tidy up
    server.wait()
    sender.join(60)
    assert STREAM // 3 <= len(answered) < STREAM

    server = serve()
    try:
        with httpx.Client(headers=headers, timeout=10) as client:
            for n in range(STREAM):
                response = client.post(base, json=receipt(n))
                assert response.status_code in (200, 201), response.text
                if n in answered:  # answered before the kill: a replay, the same answer
                    assert (response.status_code, response.json()) == (200, answered[n])
    finally:
        server.terminate()
        server.wait(30)
    with zerno_engine.connect() as connection:
        stored = connection.execute(
            select(purchases.c.receipt_id, func.count()).group_by(purchases.c.receipt_id)
        ).all()
    assert sorted(receipt_id for receipt_id, _ in stored) == sorted(
        f"S-{n}" for n in range(STREAM))  # fmt: skip
    assert all(count == 1 for _, count in stored)
    assert verify(zerno_engine)[1] == []


def _cluster(action: str, *extra: str) -> None:
    version = sorted(Path("/etc/postgresql").iterdir())[-1].name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action,
                    *extra], check=True, capture_output=True, timeout=120)  # fmt: skip
    if action != "stop":
        for _ in range(300):
            ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL did not come back")


@pytest.mark.serial  # stops PostgreSQL under every other test: `make test` runs it alone
def test_postgresql_stopped_hard_mid_stream_loses_and_duplicates_nothing(
    zerno_engine: Engine,
) -> None:
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL restart")
    if os.environ.get("CI") != "true" and not os.environ.get("KOPILKA_TEST_PG_RESTART"):
        pytest.skip("restarts PostgreSQL: runs under CI=true or KOPILKA_TEST_PG_RESTART=1")
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip("no pg_ctlcluster to stop and start PostgreSQL with")
    headers, base, serve = _a_kiosk(zerno_engine)
    server = serve()
    answered: dict[int, dict[str, Any]] = {}
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            for n in range(STREAM):
                if n == STREAM // 3:
                    _cluster("stop", "-m", "immediate")  # a crash: no checkpoint, no goodbye
                if n == STREAM // 3 + 5:
                    _cluster("start")
                response = client.post(base, json=receipt(n))
                if response.status_code in (200, 201):
                    answered[n] = response.json()
                else:  # while the database is down: a clear 503, nothing written
                    assert response.status_code == 503, response.text
                    assert response.json()["code"] == "unavailable"
            assert len(answered) < STREAM  # some were refused while it was down
            for n in range(STREAM):  # the stream again: replays, and the refused ones now
                response = client.post(base, json=receipt(n))
                assert response.status_code in (200, 201), response.text
                if n in answered:
                    assert (response.status_code, response.json()) == (200, answered[n])
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "Traceback" not in errors, errors[-3000:]
    zerno_engine.dispose()  # its pooled connections died with the server
    with zerno_engine.connect() as connection:
        counts = connection.execute(
            select(func.count(), func.count(func.distinct(purchases.c.receipt_id)))
        ).one()
    assert tuple(counts) == (STREAM, STREAM)
    assert verify(zerno_engine)[1] == []
