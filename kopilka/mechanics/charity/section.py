"""The `charity` section of a program file (docs/charity.md): the charities members may
give to, and the round-up of purchases. Every mistake is named by its path."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.charity.model import (
    MAX_CODE,
    MAX_DESCRIPTION,
    MAX_LINK,
    MAX_NAME,
    Charity,
    CharitySettings,
)

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

KEY = "charity"
SECTION_KEYS = ("charities", "round_up")
CHARITY_KEYS = ("code", "name", "description", "link", "until")
ROUND_UP_KEYS = ("step",)
CHARITY_CODE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_CODE - 1}}}$")


def charity_of(program: Program) -> CharitySettings | None:
    """The program's `charity` section (registered in `kopilka.sections`), if it has one."""
    found = program.sections.get(KEY)
    return found if isinstance(found, CharitySettings) else None


def parse_section(top: Reader, context: SectionContext) -> CharitySettings | None:
    section = top.mapping(KEY, SECTION_KEYS)
    if section is None:
        return None
    charities = tuple(_charities(section))
    if not charities and section.raw("charities") is not None:
        section.report(section.at("charities"), "is empty: list at least one charity")
    step = None
    round_up = section.mapping("round_up", ROUND_UP_KEYS)
    if round_up is not None:
        step = round_up.minor("step", context.point_digits, unit="points", required=True)
        if step == 0:
            round_up.report(round_up.at("step"), "must be more than 0")
    return CharitySettings(charities, step or None)


def _charities(section: Reader) -> list[Charity]:
    found: list[Charity] = []
    for item in section.records("charities", CHARITY_KEYS, required=True):
        code = item.text(
            "code",
            required=True,
            pattern=CHARITY_CODE,
            what=f"a charity's code (letters, digits, '-', '_'; at most {MAX_CODE})",
        )
        name = item.text("name", required=True, max_length=MAX_NAME)
        description = item.text("description", max_length=MAX_DESCRIPTION, multiline=True)
        link = _link(item)
        until = item.day("until")
        if code is not None and any(one.code == code for one in found):
            item.report(item.at("code"), f"{show(code)} is listed twice")
        elif code is not None and name is not None:
            found.append(Charity(code, name, description, link, until))
    return found


def _link(item: Reader) -> str | None:
    link = item.text("link", max_length=MAX_LINK, what="a link")
    if link is None:
        return None
    address = urlsplit(link)
    if address.scheme not in ("https", "http") or not address.netloc or " " in link:
        item.report(item.at("link"), f"{show(link)} is not an http(s) address")
        return None
    return link
