"""Choosing, for one line, the rule of each kind that decides its coefficient and its limit.

Within a kind the most specific matching rule wins: explicit `priority` first, then
sku over category (a nearer category over a farther ancestor) over none, then
location over partner over the whole program; among equals the largest coefficient
(a fixed `points_per_unit` over a coefficient) or the largest limit; a full tie
goes to the rule written first. Accrual effects and redemption limits are chosen
separately. Then the kinds combine:

    points per money unit   = base % × K1 × K2 × K3      (accrue: false anywhere → 0)
    redeemable per money unit = min(base redemption %, P1, P2, P3)
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

from kopilka.domain.calculator.results import ExplainEntry
from kopilka.domain.program import RULE_KINDS, AccrualMode, Program, Rule


class LinePlan(NamedTuple):
    """Everything the per-receipt arithmetic needs about a line, as plain integers."""

    points_per_unit: int | None  # point minor units per unit; None: the rate applies
    rate_numerator: int  # point minor units per money minor unit = numerator / denominator
    rate_denominator: int
    cap: int | None  # max_points of the winning rules, point minor units
    limit_numerator: int  # redeemable point minor units per money minor unit
    limit_denominator: int
    explain: tuple[ExplainEntry, ...]


def plan_line(program: Program, candidates: int, lineage: tuple[str, ...]) -> LinePlan:
    """The plan for a line whose matching rules are the bits of `candidates`."""
    rules = program.rules
    matching = [(i, rules[i]) for i in range(len(rules)) if candidates >> i & 1]
    money_to_points = Fraction(10**program.points.precision, 10**program.money_digits) / Fraction(
        program.points.value
    )
    rate = Fraction(program.accrual.base_percent) / 100
    limit = Fraction(program.redemption.base_percent)
    excluded = False
    points_per_unit: int | None = None
    cap: int | None = None
    explain: list[ExplainEntry] = []
    for kind in RULE_KINDS:
        of_kind = [(i, rule) for i, rule in matching if rule.kind is kind]
        earning = _winner(
            [(i, r) for i, r in of_kind if r.accrual is not None], lineage, _accrual_value
        )
        limiting = _winner(
            [(i, r) for i, r in of_kind if r.redeem_percent is not None], lineage, _limit_value
        )
        if earning is not None and earning.accrual is not None:
            effect = earning.accrual
            if effect.mode is AccrualMode.POINTS_PER_UNIT:
                points_per_unit = max(points_per_unit or 0, effect.points_per_unit)
            else:
                rate *= effect.coefficient
                excluded = excluded or effect.coefficient == 0
            if earning.max_points is not None:
                cap = earning.max_points if cap is None else min(cap, earning.max_points)
        if limiting is not None and limiting.redeem_percent is not None:
            limit = min(limit, Fraction(limiting.redeem_percent))
        explain.extend(_entries(earning, limiting))
    if excluded:
        rate, points_per_unit, cap = Fraction(0), None, None
    rate *= money_to_points
    limit = limit / 100 * money_to_points
    return LinePlan(
        points_per_unit,
        rate.numerator,
        rate.denominator,
        cap,
        limit.numerator,
        limit.denominator,
        tuple(explain),
    )


def _winner(
    candidates: list[tuple[int, Rule]],
    lineage: tuple[str, ...],
    value: Callable[[Rule], tuple[int, Fraction]],
) -> Rule | None:
    if not candidates:
        return None
    _, best = max(
        candidates, key=lambda pair: (_specificity(pair[1], lineage), value(pair[1]), -pair[0])
    )
    return best


def _specificity(rule: Rule, lineage: tuple[str, ...]) -> tuple[int, int, int, int]:
    categories = rule.when.categories
    nearness = 0
    if rule.when.skus is None and categories is not None:
        nearness = -min((lineage.index(code) for code in categories if code in lineage), default=0)
    return (rule.priority, rule.product_specificity, nearness, rule.place_specificity)


def _accrual_value(rule: Rule) -> tuple[int, Fraction]:
    effect = rule.accrual
    assert effect is not None
    if effect.mode is AccrualMode.POINTS_PER_UNIT:
        return (1, Fraction(effect.points_per_unit))
    return (0, effect.coefficient)


def _limit_value(rule: Rule) -> tuple[int, Fraction]:
    return (0, Fraction(rule.redeem_percent or 0))


def _entries(earning: Rule | None, limiting: Rule | None) -> list[ExplainEntry]:
    """One explanation entry per deciding rule; a rule that decides both gets one entry."""
    entries: list[ExplainEntry] = []
    if earning is not None and earning.accrual is not None:
        effect = earning.accrual
        per_unit = effect.mode is AccrualMode.POINTS_PER_UNIT
        entries.append(
            ExplainEntry(
                rule=earning.code,
                kind=earning.kind,
                coefficient=None if per_unit else effect.coefficient,
                points_per_unit=effect.points_per_unit if per_unit else None,
                max_points=earning.max_points,
                redeem_percent=earning.redeem_percent if limiting is earning else None,
            )
        )
    if limiting is not None and limiting is not earning:
        entries.append(
            ExplainEntry(
                rule=limiting.code, kind=limiting.kind, redeem_percent=limiting.redeem_percent
            )
        )
    return entries
