"""Shared fixtures: the example programs of examples/, parsed once per session, and the
run's migrated database templates (tests/databases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kopilka.kernel.program import Program
from kopilka.kernel.program_parser import parse_program
from kopilka.platform.files import load_document
from tests.databases import Templates

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium (a fixture named `browser…`, as the console's, the rules
    pages' and the member page's browser tests have) is `slow`: `make test-quick` leaves
    it to `make test` and CI."""
    for item in items:
        if any(name.startswith("browser") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
