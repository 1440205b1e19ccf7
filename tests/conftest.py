"""Shared fixtures: the example programs of examples/, parsed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kopilka.kernel.program import Program
from kopilka.kernel.program_parser import parse_program
from kopilka.platform.files import load_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def zerno() -> Program:
    """The seed-002 café chain (examples/zerno/program.yaml)."""
    return parse_program(load_document(EXAMPLES / "zerno" / "program.yaml"))
