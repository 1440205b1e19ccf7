"""The `referrals` section of the program file (skeleton: the helper writing the mechanic
replaces it)."""

from __future__ import annotations

from typing import Any

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader


def parse_section(top: Reader, context: SectionContext) -> Any:  # noqa: ARG001
    return None
