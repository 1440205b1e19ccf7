"""The documented examples are true: every command of the READMEs prints what they say."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

KOPILKA = str(Path(sys.executable).parent / "kopilka")
ZERNO = EXAMPLES / "zerno"


def kopilka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KOPILKA, *args], capture_output=True, text=True, cwd=ROOT, check=False)


def table_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in (ZERNO / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([^`]+)` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if match:
            rows.append((match[1], [match[2], match[3], match[4], match[5]]))
    return rows


def test_the_zerno_readme_lists_every_example_receipt():
    listed = {shlex.split(command)[0] for command, _ in table_rows()}
    assert listed == {path.name for path in (ZERNO / "receipts").glob("*.json")}


@pytest.mark.slow
@pytest.mark.parametrize(("command", "figures"), table_rows(), ids=lambda value: str(value)[:40])
def test_each_zerno_example_prints_the_figures_of_its_row(command, figures):
    receipt, *flags = shlex.split(command)
    result = kopilka(
        "quote", str(ZERNO / "program.yaml"), str(ZERNO / "receipts" / receipt), *flags
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert [answer["total"], answer["redeemed"], answer["paid"], answer["accrued"]] == figures


def test_the_quick_start_quote_is_the_worked_example_of_the_api_contract():
    result = subprocess.run(["make", "--no-print-directory", "-s", "quote"], capture_output=True,
                            text=True, cwd=ROOT, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout[result.stdout.index("{") :])
    assert answer["total"] == "610.00"
    assert answer["accrued"] == "16.80"
