"""Whose word the server takes for a client's address, on a real `kopilka serve`.

`X-Forwarded-For` counts only from the proxies `KOPILKA_TRUSTED_PROXIES` lists: without
it, a caller naming a new address with every request is still one client to the
failed-authentication limit; from a trusted proxy, each forwarded address is its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.api.test_schemathesis import _wait_until_up, free_port
from tests.conftest import EXAMPLES
from tests.databases import Templates
from tests.store.conftest import NOW


@contextmanager
def served(templates: Templates, tmp_path: Path, **environment: str) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'kopilka.sqlite3'}"
    engine = templates.sqlite(tmp_path / "kopilka.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="t", now=NOW)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KOPILKA_TRUSTED_PROXIES"}
    server = subprocess.Popen(
        [sys.executable, "-m", "kopilka.cli", "serve", "--db", url, "--port", str(port)],
        env={**env, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until_up(port)
        yield f"http://127.0.0.1:{port}/v1/programs/zerno/members/1"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _statuses(address: str) -> list[int]:
    """25 bad keys, each request claiming another address (the limit is 20 a minute)."""
    return [
        httpx.get(address, headers={"Authorization": f"Bearer kpk_guess{n}",
                                    "X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(25)
    ]  # fmt: skip


@pytest.mark.slow
def test_forwarded_addresses_are_ignored_unless_a_proxy_is_trusted(
    tmp_path: Path, templates: Templates
) -> None:
    with served(templates, tmp_path) as address:
        assert _statuses(address)[-5:] == [429] * 5


@pytest.mark.slow
def test_a_trusted_proxy_forwards_each_client_address(tmp_path: Path, templates: Templates) -> None:
    with served(templates, tmp_path, KOPILKA_TRUSTED_PROXIES="127.0.0.1") as address:
        assert set(_statuses(address)) == {401}
