"""schemathesis against the real server: every operation, 50 examples each, valid and not.

No answer may be a server error, and every answer must be one the OpenAPI document
declares, with the declared content type and schema; a body the document allows must be
taken and one it forbids refused, and a 405's `Allow` must list the path's methods. One
worker and a fixed seed: the run is the same on every machine (with several worker
threads schemathesis itself sometimes trips over a CPython 3.11 compiler error in its
coverage phase).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kopilka.members.handlers import register_member
from kopilka.operators.keys import create_key
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.databases import Templates
from tests.store.conftest import NOW

pytestmark = pytest.mark.slow  # a property search over the whole API

HERE = Path(__file__).parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,"
CHECKS += "response_schema_conformance,allow_header_conformance,"
# the document says what the server takes: a body it allows is taken (ST202), one it
# forbids is refused (ST201) — per-operation exceptions in schemathesis.toml, each said why
CHECKS += "positive_data_acceptance,negative_data_rejection"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_schemathesis_finds_no_server_error_and_no_undeclared_answer(
    tmp_path: Path, templates: Templates
) -> None:
    tool = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.fail("schemathesis is not installed (it is a dev dependency)")
    url = f"sqlite:///{tmp_path / 'kopilka.sqlite3'}"
    engine = templates.sqlite(tmp_path / "kopilka.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    key = create_key(engine, "zerno", "admin", now=NOW)[0]
    engine.dispose()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kopilka.cli", "serve", "--db", url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_until_up(port)
        run = subprocess.run(
            [tool, "--config-file", str(HERE / "schemathesis.toml"), "run",
             f"http://127.0.0.1:{port}/openapi.json", "-H", f"Authorization: Bearer {key}",
             "--max-examples", "50", "--checks", CHECKS, "--workers", "1", "--seed", "20261125",
             "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert run.returncode == 0, run.stdout[-6000:]
    assert "Traceback" not in errors, errors[-4000:]


def _wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")
