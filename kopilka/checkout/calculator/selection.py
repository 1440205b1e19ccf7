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

from kopilka.checkout.calculator.memo import remember
from kopilka.checkout.calculator.results import ExplainEntry
from kopilka.kernel.program import RULE_KINDS, AccrualMode, Program, Rule


class LinePlan(NamedTuple):
    """Everything the per-receipt arithmetic needs about a line, as plain integers."""

    points_per_unit: int | None  # point minor units per unit; None: the rate applies
    rate_numerator: int  # point minor units per money minor unit = numerator / denominator
    rate_denominator: int
    cap: int | None  # max_points of the winning rules, point minor units
    limit_numerator: int  # redeemable point minor units per money minor unit
    limit_denominator: int
    explain: tuple[ExplainEntry, ...]


class _RuleFacts(NamedTuple):
    """What ranking needs of a rule, as small integers fixed when the program is compiled."""

    kind: int  # 0 client, 1 product, 2 behaviour
    priority: int
    product: int  # sku 2, category 1, none 0
    place: int  # location 2, partner 1, program 0
    categories: frozenset[str] | None  # for category rules: to find the nearest one named
    accrual_rank: int | None  # order of the accrual effect's value among all rules'; None: none
    limit_rank: int | None  # order of redeem_percent among all rules'; None: no limit


_NONE = -1
Winners = tuple[int, int, int, int, int, int]  # accrual rule of K1, K2, K3; limit rule of P1–P3


class Selector:
    """Chooses the deciding rules of a line and turns them into a `LinePlan`.

    Plans are memoised by their deciding rules, so the many sets of matching rules that
    end in the same winners share one plan (and its exact Fraction arithmetic).
    """

    def __init__(self, program: Program, money_to_points: Fraction) -> None:
        self.program = program
        self._money_to_points = money_to_points  # money minor unit → point minor units
        self._facts = _compile_facts(program.rules)
        self._plans: dict[Winners, LinePlan] = {}

    def forget(self) -> None:
        self._plans.clear()

    def plan(self, candidates: int, lineage: tuple[str, ...]) -> LinePlan:
        """The plan for a line whose matching rules are the bits of `candidates`."""
        winners = self.winners(candidates, lineage)
        plan = self._plans.get(winners)
        if plan is None:
            plan = _build_plan(self.program, winners, self._money_to_points)
            remember(self._plans, winners, plan)
        return plan

    def winners(self, candidates: int, lineage: tuple[str, ...]) -> Winners:
        """Index of the deciding accrual rule and limit rule of each kind (-1: none)."""
        facts = self._facts
        best = [_NONE] * 6
        best_rank: list[tuple[int, ...]] = [()] * 6
        remaining = candidates
        while remaining:
            lowest = remaining & -remaining
            remaining ^= lowest
            i = lowest.bit_length() - 1
            fact = facts[i]
            nearness = 0
            if fact.categories is not None:
                nearness = -min(
                    (lineage.index(code) for code in fact.categories if code in lineage), default=0
                )
            if fact.accrual_rank is not None:
                rank = (fact.priority, fact.product, nearness, fact.place, fact.accrual_rank, -i)
                if rank > best_rank[fact.kind]:
                    best_rank[fact.kind], best[fact.kind] = rank, i
            if fact.limit_rank is not None:
                rank = (fact.priority, fact.product, nearness, fact.place, fact.limit_rank, -i)
                if rank > best_rank[3 + fact.kind]:
                    best_rank[3 + fact.kind], best[3 + fact.kind] = rank, i
        return (best[0], best[1], best[2], best[3], best[4], best[5])


def _compile_facts(rules: tuple[Rule, ...]) -> list[_RuleFacts]:
    accrual_values = sorted({_accrual_value(rule) for rule in rules if rule.accrual})
    limit_values = sorted(
        {rule.redeem_percent for rule in rules if rule.redeem_percent is not None}
    )
    accrual_order = {value: order for order, value in enumerate(accrual_values)}
    limit_order = {value: order for order, value in enumerate(limit_values)}
    return [
        _RuleFacts(
            kind=RULE_KINDS.index(rule.kind),
            priority=rule.priority,
            product=rule.product_specificity,
            place=rule.place_specificity,
            categories=rule.when.categories if rule.product_specificity == 1 else None,
            accrual_rank=accrual_order[_accrual_value(rule)] if rule.accrual else None,
            limit_rank=None if rule.redeem_percent is None else limit_order[rule.redeem_percent],
        )
        for rule in rules
    ]


def _accrual_value(rule: Rule) -> tuple[int, Fraction]:
    """How an accrual effect ranks among equals: points_per_unit above coefficients, then size."""
    effect = rule.accrual
    assert effect is not None
    if effect.mode is AccrualMode.POINTS_PER_UNIT:
        return (1, Fraction(effect.points_per_unit))
    return (0, effect.coefficient)


def _build_plan(program: Program, winners: Winners, money_to_points: Fraction) -> LinePlan:
    """Combine the kinds: rate = base % × K1 × K2 × K3; limit = min(base %, P1, P2, P3)."""
    rules = program.rules
    rate = Fraction(program.accrual.base_percent) / 100
    limit = Fraction(program.redemption.base_percent)
    excluded = False
    points_per_unit: int | None = None
    cap: int | None = None
    explain: list[ExplainEntry] = []
    for slot in range(len(RULE_KINDS)):
        earner = rules[winners[slot]] if winners[slot] != _NONE else None
        limiter = rules[winners[3 + slot]] if winners[3 + slot] != _NONE else None
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
    if excluded:  # accrue: false wins over everything: an excluded line earns nothing
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
