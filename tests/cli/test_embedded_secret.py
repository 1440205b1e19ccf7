"""The embedded database keeps its secret beside it, so `kopilka members link` and a server
started on the same SQLite file agree with no setup: the link it prints opens."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kopilka.kernel.ledger import luhn_check_digit
from kopilka.platform.secret import secret_path, shared_secret
from tests.cli.test_readme import environment, free_port, stop, wait_ready

pytestmark = pytest.mark.slow  # a served process

KOPILKA = str(Path(sys.executable).parent / "kopilka")
FIRST_CARD = "70000000000" + luhn_check_digit("70000000000")  # the demo's first member


def kopilka(scratch: Path, *args: str, **env: str) -> str:
    done = subprocess.run([KOPILKA, *args], cwd=scratch, env=environment(**env),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_link_printed_by_the_command_line_opens_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("KOPILKA_SECRET", raising=False)  # `environment()` copies os.environ
    kopilka(tmp_path, "demo", "--no-serve", "--members", "3", "--receipts", "5")
    port = free_port()
    link = ["members", "link", f"card:{FIRST_CARD}", "--program", "zerno",
            "--base-url", f"http://127.0.0.1:{port}"]  # fmt: skip
    ours = kopilka(tmp_path, *link).strip()
    secret = tmp_path / "kopilka.sqlite3.secret"  # made by its first use
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    others = kopilka(tmp_path, *link, KOPILKA_SECRET="another server's secret").strip()
    server = subprocess.Popen([KOPILKA, "serve", "--port", str(port)], cwd=tmp_path,
                              env=environment(), stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_ready(port, server)
        opened, refused = httpx.get(ours), httpx.get(others)
    finally:
        stop(server)
    assert opened.status_code == 200, opened.text[:500]
    assert FIRST_CARD in opened.text  # the member's own page
    assert refused.status_code == 404  # KOPILKA_SECRET still wins over the file


def test_the_secret_is_made_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KOPILKA_SECRET", raising=False)
    url = f"sqlite:///{tmp_path / 'cafe.sqlite3'}"
    first = shared_secret(url)
    assert first is not None
    assert len(first) >= 40
    assert shared_secret(url) == first
    assert (tmp_path / "cafe.sqlite3.secret").read_text().strip() == first
    assert [path.name for path in tmp_path.iterdir()] == ["cafe.sqlite3.secret"]  # no drafts
    monkeypatch.setenv("KOPILKA_SECRET", "the operator's own")
    assert shared_secret(url) == "the operator's own"


def test_a_database_that_is_no_file_keeps_no_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KOPILKA_SECRET", raising=False)
    for url in ("postgresql://kopilka@db.example.internal/kopilka", "sqlite://",
                "sqlite:///:memory:"):  # fmt: skip
        assert secret_path(url) is None
        assert shared_secret(url) is None
    assert secret_path("sqlite:///kopilka.sqlite3") == Path("kopilka.sqlite3.secret")
