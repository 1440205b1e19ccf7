"""Shared fixtures: the example programs of examples/, parsed once per session, the
run's migrated database templates (tests/databases.py), and Debian's Chromium for the
browser tests."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kopilka.kernel.program import Program
from kopilka.kernel.program_parser import parse_program
from kopilka.platform.files import load_document
from tests.databases import Templates

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`.ci/run` installs it), never a downloaded one
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"  # the folder CI keeps


@pytest.fixture(scope="session")
def zerno() -> Program:
    """The seed-002 café chain (examples/zerno/program.yaml)."""
    return parse_program(load_document(EXAMPLES / "zerno" / "program.yaml"))


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Migrated databases to copy, one per dialect, made when a test first needs one."""
    made = Templates(tmp_path_factory.mktemp("templates"))
    yield made
    made.close()


def _xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands the tests to pytest-xdist's workers (`make test`)."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist the controller compacts the test database's catalogs before its
    workers start (a worker doesn't: tests/store/conftest.py); it runs no test itself."""
    if _xdist_controller(session.config):
        from tests.store.conftest import postgresql_problem

        postgresql_problem()  # reachable: compacted


def pytest_sessionfinish(session: pytest.Session) -> None:
    """…and after they have all ended."""
    if _xdist_controller(session.config):
        from tests.store.conftest import compact_catalogs, postgresql_problem

        if postgresql_problem() is None:
            compact_catalogs()


class SkippedPostgresql:
    """Under xdist, the controller's count of the workers' `PostgreSQL not reachable`
    skips, for the summary line tests/store/conftest.py writes in a run without workers."""

    def __init__(self) -> None:
        self.tests: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and "PostgreSQL not reachable" in str(report.longrepr):
            self.tests.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:  # pragma: no cover
        if self.tests:
            terminalreporter.write_sep(
                "!", f"PostgreSQL part NOT run: {len(self.tests)} storage tests ran on SQLite only"
            )


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        config.pluginmanager.register(SkippedPostgresql(), "kopilka-skipped-postgresql")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium (a fixture named `browser…`, as the console's, the rules
    pages' and the member page's browser tests have) is `slow`: `make test-quick` leaves
    it to `make test` and CI."""
    for item in items:
        if any(name.startswith("browser") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def needed(module: str) -> Any:
    """`module`, imported; without it the test is skipped — a failure under CI=true,
    where a missing tool must not pass for a green run."""
    if os.environ.get("CI") == "true":
        try:
            return importlib.import_module(module)
        except ImportError as error:
            pytest.fail(f"CI=true and {module} can't be imported: {error}")
    return pytest.importorskip(module)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright. Without it (or Playwright) the
    test is skipped, except under CI=true, where it fails."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and Chromium is not installed at {CHROMIUM}")
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = needed("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for a module's browser tests; a test gives each page a context of its own."""
    with chromium() as launched:
        yield launched


def snap(page: Any, name: str) -> None:
    """A screenshot of the whole page, kept as test-artifacts/screenshots/`name`.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
