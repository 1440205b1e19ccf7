"""The README's commands work as written: the quick start's demo, the curl walk-through,
the storage, serving, import and production sections.

Each shell block is taken from README.md itself, so the README can't drift from what
Kopilka does. Commands run in a scratch directory that holds `examples/` and `.venv/`
as links, so the README's relative paths work and the embedded database
(`kopilka.sqlite3`) lands in the scratch directory. Only what a test can't do literally
is changed, and said where: a free port instead of 8000, the test PostgreSQL instead of
the example host, `[optional]` arguments left out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.databases import PG_URL
from tests.store.conftest import require_postgresql

pytestmark = pytest.mark.slow  # the README's commands, each a subprocess or a served process

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
KOPILKA = ROOT / ".venv" / "bin" / "kopilka"


def sh_blocks(section: str) -> list[str]:
    """The ```sh blocks of the README section whose heading starts with `section`."""
    start = README.index(f"## {section}")
    end = README.find("\n## ", start + 1)
    body = README[start : end if end > 0 else None]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def commands(block: str) -> list[str]:
    """A block's command lines: comments and `[optional]` parts dropped."""
    lines = []
    for line in block.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        command = re.sub(r"\s*\[[^\]]*\]", "", command)
        if command and not command.startswith("#"):
            lines.append(command)
    return lines


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if not KOPILKA.exists():
        pytest.skip("the README's commands use .venv/bin/kopilka: run `make test`")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def environment(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k != "KOPILKA_DB"}
    return {**clean, **extra}


def run(command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env or environment(),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, server: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise AssertionError(f"the server stopped: {server.communicate()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def documents(output: str) -> list[Any]:
    """The JSON answers curl printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(output, at)
        found.append(document)
    return found


def stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
    try:
        out, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    return out


# — the quick start and the walk-through —


@pytest.mark.serial  # the demo has 120 s to build and serve: too few sharing the CPU
def test_quick_start_demo_then_the_curl_walk_through(scratch: Path) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "make demo" in sh_blocks("Quick start")[0]
    assert "$(BIN)/kopilka demo\n" in makefile  # `make demo` is exactly `kopilka demo`
    port = free_port()
    demo = subprocess.Popen([str(KOPILKA), "demo", "--port", str(port)], cwd=scratch,
                            env=environment(), stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_ready(port, demo)
        walk = sh_blocks("A walk-through with curl")[0].replace(
            "127.0.0.1:8000", f"127.0.0.1:{port}"
        )
        key = _admin_key_of_running_demo(scratch)
        answers = documents(run(walk, scratch, environment(KEY=key)))
    finally:
        printed = stop(demo)
    assert "demo created: program zerno, 1000 members" in printed
    assert re.search(r"admin key:  kpk_\S+", printed)
    assert re.search(r"console: +http://\S+/console/login +admin@zerno\.example / \S+", printed)
    _check_walk_through(answers)
    again = subprocess.run([str(KOPILKA), "demo", "--no-serve"], cwd=scratch, env=environment(),
                           capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert "demo found in place" in again.stdout


def _admin_key_of_running_demo(scratch: Path) -> str:
    """A fresh admin key from the command line (the demo prints its own on stdout, which
    the test reads only when the demo has stopped)."""
    out = run(".venv/bin/kopilka keys create --program zerno --role admin", scratch)
    return out.strip().splitlines()[-1].strip()


def _check_walk_through(answers: list[Any]) -> None:
    member, adjusted, quoted, bought, replayed, refunded, balance = answers  # P=$(…) prints none
    assert (member["card"], member["phone"]) == ("100009", "+79123456789"), member
    assert adjusted["points"] == "100.00", adjusted
    assert quoted["status"] == "quote", quoted
    assert (bought["redeemed"], bought["accrued"]) == ("30.00", "4.20"), bought
    assert replayed == bought  # a replay answers the first answer
    assert refunded["purchase_id"] == bought["purchase_id"]
    assert refunded["refund_id"] == "RF-1", refunded
    assert balance["available"] == "100.00", balance  # the 30 paid came back, the 4.20 went


# — the other sections —


def test_storing_section(scratch: Path) -> None:
    for command in commands(sh_blocks("Storing programs")[0]):
        run(command, scratch)
    assert (scratch / "kopilka.sqlite3").exists()


def test_serving_section_keys_and_serve(scratch: Path) -> None:
    lines = commands(sh_blocks("Serving")[0])
    serve, demo, create, listed, revoke = lines
    run(demo.replace("demo", "demo --no-serve --members 20 --receipts 50", 1), scratch)
    key = run(create, scratch).strip().splitlines()[-1]
    assert key.startswith("kpk_")
    assert "admin" in run(listed, scratch)
    key_id = _key_id(scratch, key)
    run(revoke.replace("ID", key_id), scratch)
    port = free_port()
    server = subprocess.Popen(["bash", "-c", f"exec {serve} --port {port} --workers 2"],
                              cwd=scratch, env=environment(), stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        wait_ready(port, server)
        refused = httpx.get(f"http://127.0.0.1:{port}/v1/programs/zerno",
                            headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert refused.status_code == 401  # the revoked key
    finally:
        stop(server)


def _key_id(scratch: Path, key: str) -> str:
    listed = json.loads(run(".venv/bin/kopilka keys list --program zerno", scratch))
    items = listed["items"] if isinstance(listed, dict) else listed
    return next(str(item["id"]) for item in items if key.startswith(item["prefix"]))


def test_import_section(scratch: Path) -> None:
    run(".venv/bin/kopilka program apply examples/zerno/program.yaml", scratch)
    (scratch / "members.csv").write_text("card,phone,name\n200001,+79160000001,Анна\n")
    (scratch / "receipts.csv").write_text(
        "receipt_id,location,at,member,sku,qty,price\n"
        "H-1,kiosk,2026-11-01T10:00:00+03:00,card:200001,TEA-400,2,\n"
    )
    members, receipts = commands(sh_blocks("Importing")[0])
    assert "imported 1" in run(members, scratch)
    assert "imported 1" in run(receipts, scratch)
    assert "already there 1" in run(receipts, scratch)  # again: nothing twice


def test_production_section_on_postgresql(scratch: Path) -> None:
    require_postgresql()
    schema = f"readme_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = PG_URL.replace("+psycopg", "") + f"?options=-csearch_path%3D{schema}"
    try:
        lines = commands(sh_blocks("PostgreSQL in production")[0])
        assert lines[0].startswith("export KOPILKA_DB=")
        env = environment(KOPILKA_DB=url)  # the test's PostgreSQL, not the example host
        migrate, apply, serve = lines[1:]
        run(migrate, scratch, env)
        run(apply, scratch, env)
        port = free_port()
        serve = serve.replace("--host 0.0.0.0", "--host 127.0.0.1") + f" --port {port}"
        server = subprocess.Popen(["bash", "-c", f"exec {serve}"], cwd=scratch, env=env,
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_ready(port, server)
        finally:
            stop(server)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_every_readme_section_with_commands_is_covered() -> None:
    covered = ("Quick start", "A walk-through", "Storing", "Serving", "Importing",
               "PostgreSQL in production")  # fmt: skip
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    with_commands = [h for h in headings if sh_blocks(h)]
    assert [h for h in with_commands if not h.startswith(covered)] == []
