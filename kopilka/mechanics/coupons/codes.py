"""Coupon codes people can read out, type and not guess.

A code is drawn from an alphabet without look-alike pairs (after Crockford's base 32:
no O or Q beside 0, no I or L beside 1, no S beside 5, no Z beside 2, no B beside 8),
long enough for at least 40 random bits, plus a check character, so a mistyped code is
told apart from one never issued. It is shown in groups (`7KXM-3HPR-4D`); what a person
types is normalised first — case, spaces, dashes, and each look-alike read as the
character it resembles.

Pure: randomness comes from the caller (`secrets.SystemRandom()` in production, a seeded
`random.Random` in tests).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

ALPHABET = "0123456789ACDEFGHJKMNPRTUVWXY"  # 29 characters (a prime: see check_character)
LOOK_ALIKES = {"O": "0", "Q": "0", "I": "1", "L": "1", "S": "5", "Z": "2", "B": "8"}
MIN_BITS = 40
GROUP = 4


def random_length(bits: int = MIN_BITS) -> int:
    """How many characters carry at least `bits` random bits."""
    return math.ceil(bits / math.log2(len(ALPHABET)))


def check_character(body: str) -> str:
    """A weighted sum modulo the alphabet's size (a prime, 29): catches every single
    wrong character and every swap of two neighbours in a code of under 29 characters."""
    total = sum((position + 1) * ALPHABET.index(char) for position, char in enumerate(body))
    return ALPHABET[total % len(ALPHABET)]


def new_code(rng: random.Random, *, bits: int = MIN_BITS, prefix: str = "") -> str:
    """A fresh code: `prefix` (a campaign's, optional), random characters, a check."""
    body = prefix + "".join(rng.choice(ALPHABET) for _ in range(random_length(bits)))
    return body + check_character(body)


def batch(rng: random.Random, count: int, *, bits: int = MIN_BITS, prefix: str = "",
          taken: frozenset[str] = frozenset()) -> Iterator[str]:  # fmt: skip
    """`count` distinct new codes, none of them in `taken` (the campaign's earlier ones)."""
    seen: set[str] = set()
    while len(seen) < count:
        code = new_code(rng, bits=bits, prefix=prefix)
        if code not in seen and code not in taken:
            seen.add(code)
            yield code


def shown(code: str) -> str:
    """The code as printed for people: groups of four, the check at the end."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def typed(text: str) -> str | None:
    """What a person typed as the code it means (None: not a code at all)."""
    cleaned = "".join(char for char in text.upper() if not char.isspace() and char != "-")
    normal = "".join(LOOK_ALIKES.get(char, char) for char in cleaned)
    if len(normal) < 2 or any(char not in ALPHABET for char in normal):
        return None
    return normal


def is_well_formed(code: str) -> bool:
    """The check character agrees: a typo, not a code that was never issued."""
    return len(code) >= 2 and check_character(code[:-1]) == code[-1]
