"""Coupon codes: entropy, no look-alikes, typos caught, what people type understood."""

from __future__ import annotations

import math
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.mechanics.coupons.codes import (
    ALPHABET,
    LOOK_ALIKES,
    batch,
    check_character,
    is_well_formed,
    new_code,
    random_length,
    shown,
    typed,
)


def test_a_code_carries_at_least_40_random_bits_and_no_look_alikes() -> None:
    assert random_length() * math.log2(len(ALPHABET)) >= 40
    assert not set("OQILSZB") & set(ALPHABET)
    code = new_code(random.Random(1))
    assert len(code) == random_length() + 1
    assert set(code) <= set(ALPHABET)
    assert is_well_formed(code)


codes = st.text(alphabet=ALPHABET, min_size=2, max_size=14)


@given(codes, st.data())
def test_every_single_wrong_character_is_caught(body: str, data: st.DataObject) -> None:
    code = body + check_character(body)
    position = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(st.sampled_from([c for c in ALPHABET if c != code[position]]))
    assert not is_well_formed(code[:position] + wrong + code[position + 1 :])


@given(codes, st.data())
def test_every_swap_of_two_different_neighbours_is_caught(body: str, data: st.DataObject) -> None:
    code = body + check_character(body)  # swaps within the body (the check isn't weighted)
    i = data.draw(st.integers(0, len(body) - 2))
    if code[i] == code[i + 1]:
        return
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    assert not is_well_formed(swapped)


def test_what_people_type_is_read_as_the_code() -> None:
    code = new_code(random.Random(7))
    printed = shown(code)
    assert printed.count("-") == (len(code) - 1) // 4
    assert typed(printed.lower()) == code
    assert typed(" " + printed.replace("-", " ") + " ") == code
    for look_alike, meant in LOOK_ALIKES.items():
        assert typed(f"{meant}{meant}") == typed(f"{look_alike}{meant}")
    assert typed("ПРОМО") is None
    assert typed("#") is None


def test_a_batch_is_distinct_and_avoids_codes_already_issued() -> None:
    rng = random.Random(3)
    first = list(batch(rng, 2000, prefix="KF"))
    assert len(set(first)) == 2000
    assert all(code.startswith("KF") and is_well_formed(code) for code in first)
    more = list(batch(random.Random(3), 100, prefix="KF", taken=frozenset(first)))
    assert not set(more) & set(first)


@pytest.mark.skipif(not os.environ.get("KOPILKA_BIG_TESTS"),
                    reason="a million codes: KOPILKA_BIG_TESTS=1")  # fmt: skip
def test_a_batch_of_a_million_is_unique() -> None:
    codes = list(batch(random.Random(), 1_000_000))
    assert len(set(codes)) == 1_000_000
