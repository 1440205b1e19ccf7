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

from fractions import Fraction
from typing import NamedTuple

from kopilka.domain.calculator.results import ExplainEntry
from kopilka.domain.program import RULE_KINDS, AccrualMode, Program, Rule, RuleKind


class LinePlan(NamedTuple):
    """Everything the per-receipt arithmetic needs about a line, as plain integers."""

    points_per_unit: int | None  # point minor units per unit; None: the rate applies
    rate_numerator: int  # point minor units per money minor unit = numerator / denominator
    rate_denominator: int
    cap: int | None  # max_points of the winning rules, point minor units
    limit_numerator: int  # redeemable point minor units per money minor unit
    limit_denominator: int
    explain: tuple[ExplainEntry, ...]


def plan_line(
    program: Program, candidates: int, lineage: tuple[str, ...], money_to_points: Fraction
) -> LinePlan:
    """The plan for a line whose matching rules are the bits of `candidates`.

    `money_to_points` converts a money minor unit into point minor units at a rate of 1.
    """
    earning, limiting = _winners(program.rules, candidates, lineage)
    rate = Fraction(program.accrual.base_percent) / 100
    limit = Fraction(program.redemption.base_percent)
    excluded = False
    points_per_unit: int | None = None
    cap: int | None = None
    explain: list[ExplainEntry] = []
    for kind in RULE_KINDS:
        earner, limiter = earning.get(kind), limiting.get(kind)
        if earner is not None and earner.accrual is not None:
            effect = earner.accrual
            if effect.mode is AccrualMode.POINTS_PER_UNIT:
                points_per_unit = max(points_per_unit or 0, effect.points_per_unit)
            else:
                rate *= effect.coefficient
                excluded = excluded or effect.coefficient == 0
            if earner.max_points is not None:
                cap = earner.max_points if cap is None else min(cap, earner.max_points)
        if limiter is not None and limiter.redeem_percent is not None:
            limit = min(limit, Fraction(limiter.redeem_percent))
        explain.extend(_entries(earner, limiter))
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


Rank = tuple[tuple[int, int, int, int], tuple[int, Fraction], int]


def _winners(
    rules: tuple[Rule, ...], candidates: int, lineage: tuple[str, ...]
) -> tuple[dict[RuleKind, Rule], dict[RuleKind, Rule]]:
    """The deciding accrual rule and limit rule of each kind, in one pass over the set bits."""
    earning: dict[RuleKind, tuple[Rank, Rule]] = {}
    limiting: dict[RuleKind, tuple[Rank, Rule]] = {}
    remaining = candidates
    while remaining:
        lowest = remaining & -remaining
        remaining ^= lowest
        i = lowest.bit_length() - 1
        rule = rules[i]
        specificity = _specificity(rule, lineage)
        if rule.accrual is not None:
            _keep_best(earning, rule, (specificity, _accrual_value(rule), -i))
        if rule.redeem_percent is not None:
            _keep_best(limiting, rule, (specificity, (0, Fraction(rule.redeem_percent)), -i))
    return (
        {kind: rule for kind, (_, rule) in earning.items()},
        {kind: rule for kind, (_, rule) in limiting.items()},
    )


def _keep_best(best: dict[RuleKind, tuple[Rank, Rule]], rule: Rule, rank: Rank) -> None:
    current = best.get(rule.kind)
    if current is None or rank > current[0]:
        best[rule.kind] = (rank, rule)


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
