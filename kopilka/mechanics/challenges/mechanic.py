"""The challenges' hooks into the purchase pipeline.

A purchase reads the member's standing on the challenges in force (one row per
challenge and current period, and the categories they have bought from when a challenge
counts new ones) with its load, works out each challenge's step from the priced lines,
and writes it in its own statement: the running state (`Sale.bumps`), its rows
(`Sale.rows`), a completion's points with the purchase's postings, a badge, a coupon
asked of the coupons mechanic. Only a completion that raises a tier writes after the
purchase. A refund takes back what its lines gave, and a completion with its reward.
The day a purchase counts on is the program's day of its processing, as the member's
standing counts it (docs/standing.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, ScalarSelect, String, bindparam, select

from kopilka.checkout.mechanic import (
    JSON,
    CouponWanted,
    Mechanic,
    Reads,
    Refunding,
    Sale,
    Settlement,
    Step,
    Undone,
    confirm_points,
)
from kopilka.checkout.records import Award
from kopilka.kernel.ledger import Reason
from kopilka.mechanics.challenges import handlers
from kopilka.mechanics.challenges.handlers import Move, challenges_of
from kopilka.mechanics.challenges.model import Goal, Standing
from kopilka.mechanics.challenges.pages import router
from kopilka.mechanics.challenges.tables import (
    BADGE_COLUMNS,
    CHECKS,
    PURCHASE_CHALLENGE_COLUMNS,
    member_badges,
    member_categories,
    member_challenges,
    purchase_challenges,
)
from kopilka.members.standing import local_day
from kopilka.platform.statements import ChildRows
from kopilka.programs.handlers import LoadedProgram

HERE = Path(__file__).resolve().parent


class Challenges(Mechanic):
    name = "challenges"
    step = Step.LATER
    pages = router
    templates = HERE / "templates"
    translations = HERE / "locale"
    migrations = HERE / "migrations"
    checks = CHECKS
    console_link = ("challenges", "Challenges and badges")

    def reads(self, program: LoadedProgram, member: ScalarSelect[Any]) -> Reads | None:
        settings = program.calculator.program
        challenges = challenges_of(settings)
        if not challenges:
            return None
        c = member_challenges.c
        since = bindparam("challenges_since", type_=String())
        queries: tuple[Any, ...] = (
            select(c.challenge, c.period, c.progress, c.marker, c.spare, c.completions)
            .where(c.member_id == member, c.period >= since),
        )  # fmt: skip
        if any(challenge.goal is Goal.NEW_CATEGORIES for challenge in challenges):
            queries += (select(member_categories.c.category)
                        .where(member_categories.c.member_id == member),)  # fmt: skip

        def parameters(now: datetime) -> JSON:
            day = local_day(now, settings.timezone)
            return {"challenges_since": handlers.earliest_period(challenges, day)}

        return Reads(queries, _facts, parameters)

    def quoted(self, sale: Sale) -> None:
        found = _moves(sale)
        if found:
            program = sale.program.calculator.program
            sale.answer[self.name] = [handlers.move_json(move, program) for move in found]

    def planned(self, sale: Sale) -> None:
        if sale.wallet is None or sale.member_id is None:
            return
        found = _moves(sale)
        program = sale.program.calculator.program
        member_id = sale.member_id
        if _counts_categories(sale):
            lines = _lines(sale)
            sale.bumps += handlers.category_bumps(member_id, lines)
        if not found:
            return
        rows, badges = [], []
        for move in found:
            points = self._reward(sale, move) if move.completed else 0
            sale.bumps.append(move.bump(member_id))
            rows.append({"program_id": sale.program.program_id, "member_id": member_id,
                         "challenge": move.challenge.code, "period": move.period,
                         "progress": move.after.progress - move.before.progress,
                         "completed": int(move.completed), "points": points,
                         "taken_back": 0, "reward_back": 0, "created_at": sale.now})  # fmt: skip
            badge = move.challenge.reward.badge
            if move.completed and badge:
                badges.append({"program_id": sale.program.program_id, "member_id": member_id,
                               "badge": badge, "challenge": move.challenge.code,
                               "earned_at": sale.now})  # fmt: skip
        sale.rows.append(ChildRows(purchase_challenges, "purchase_id",
                                   PURCHASE_CHALLENGE_COLUMNS, rows))  # fmt: skip
        if badges:
            sale.rows.append(ChildRows(member_badges, "purchase_id", BADGE_COLUMNS, badges))
        sale.answer[self.name] = [handlers.move_json(move, program) for move in found]

    def _reward(self, sale: Sale, move: Move) -> int:
        """A completion's points (the purchase's own postings) and coupon; the points."""
        reward = move.challenge.reward
        code = move.challenge.code
        if reward.coupon:
            sale.coupons_wanted.append(CouponWanted(self.name, reward.coupon, f"challenge {code}"))
        if not reward.points:
            return 0
        assert sale.wallet is not None
        wallet = sale.wallet
        if not sale.hold:  # a held purchase's come at its confirm
            wallet.accrue(f"{wallet.program.code}:purchase:{{purchase}}:challenge:{code}",
                          reward.points, reason=Reason.MECHANIC,
                          pending=wallet.program.accrual.pending_days > 0)  # fmt: skip
        sale.awards.append(Award(self.name, "points", reward.points, source=code))
        return reward.points

    def writes_after(self, sale: Sale) -> bool:
        return bool(_tiers_due(sale))

    def completed(self, sale: Sale) -> None:
        """A completion that raises the member's tier: written after the purchase (the
        only part of a challenge that costs a round trip, and only when it happens)."""
        if sale.hold or sale.member_id is None:
            return
        program = sale.program.calculator.program
        for move in _tiers_due(sale):
            tier = move.challenge.reward.tier
            assert tier is not None
            if handlers.raise_tier(sale.connection, program, sale.program.program_id,
                                   sale.member_id, tier, f"challenge {move.challenge.code}",
                                   sale.now):  # fmt: skip
                sale.answer.setdefault("tier_raised", tier)

    def confirmed(self, settlement: Settlement) -> None:
        """A held purchase confirmed: its completions' points, and the tiers they raise."""
        confirm_points(settlement, self.name)
        program = settlement.program.calculator.program
        rewards = {challenge.code: challenge.reward for challenge in challenges_of(program)}
        for code in handlers.completed_by(settlement.connection, settlement.purchase_id):
            tier = rewards[code].tier if code in rewards else None
            if tier and handlers.raise_tier(settlement.connection, program,
                                            settlement.program.program_id,
                                            settlement.member_id, tier, f"challenge {code}",
                                            settlement.now):  # fmt: skip
                settlement.answer.setdefault("tier_raised", tier)

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase cancelled (or run out): what it added, and its completions."""
        program = settlement.program.calculator.program
        purchase = Undone(settlement.purchase_id, settlement.member_id, settlement.now)
        plan = handlers.refund_plan(settlement.connection, program, purchase, [], True,
                                    undo=True,
                                    coupons=settlement.revoked.get(self.name, 0))  # fmt: skip
        if plan:
            handlers.take_back(settlement.connection, settlement.purchase_id,
                               settlement.member_id, plan, settlement.now)  # fmt: skip
            settlement.answer["challenges_back"] = handlers.back_json(plan, program)

    def refund_points(self, refund: Refunding) -> int:
        return sum(back.points for back in _refund_plan(refund))

    def gift_stands(self, refund: Refunding) -> bool:
        """A completion's coupon stands unless the refund takes that completion back."""
        return not any(back.completion for back in _refund_plan(refund, coupons=None))

    def refunded(self, refund: Refunding) -> None:
        plan = _refund_plan(refund, coupons=refund.revoked.get(self.name, 0))
        if not plan:
            return
        handlers.take_back(refund.connection, int(refund.purchase.id),
                           int(refund.purchase.member_id), plan, refund.now)  # fmt: skip
        refund.answer["challenges_back"] = handlers.back_json(
            plan, refund.program.calculator.program
        )

    def member_part(
        self, connection: Connection, program: LoadedProgram, member_id: int, now: datetime
    ) -> JSON | None:
        settings = program.calculator.program
        return handlers.member_challenges_json(connection, settings, member_id, now,
                                               local_day(now, settings.timezone))  # fmt: skip


def _facts(rows: Any) -> JSON:
    standing = {(row[0], row[1]): Standing(int(row[2]), int(row[3]), int(row[4]), int(row[5]))
                for row in rows[0]}  # fmt: skip
    categories = frozenset(row[0] for row in rows[1]) if len(rows) > 1 else frozenset()
    return {"standing": standing, "categories": categories}


def _lines(sale: Sale) -> list[Any]:
    amounts = {line.n: line.amount for line in sale.priced.quote.lines}
    return handlers.challenge_lines(sale.program.calculator.program, sale.receipt, amounts)


def _counts_categories(sale: Sale) -> bool:
    return any(challenge.goal is Goal.NEW_CATEGORIES
               for challenge in challenges_of(sale.program.calculator.program))  # fmt: skip


def _moves(sale: Sale) -> list[Move]:
    """What the receipt does to each challenge: worked out once per sale."""
    parts = sale.priced.parts
    if "challenges" in parts:
        found: list[Move] = parts["challenges"]
        return found
    program = sale.program.calculator.program
    challenges = challenges_of(program)
    found = []
    if challenges and sale.member is not None:
        read = sale.priced.read.get("challenges", {})
        day = local_day(sale.now, program.timezone)
        found = handlers.moves(challenges, read.get("standing", {}),
                               read.get("categories", frozenset()), _lines(sale), day)  # fmt: skip
    parts["challenges"] = found
    return found


def _tiers_due(sale: Sale) -> list[Move]:
    if sale.hold or sale.member_id is None:
        return []
    return [move for move in _moves(sale) if move.completed and move.challenge.reward.tier]


def _refund_plan(refund: Refunding, coupons: int | None = 0) -> list[handlers.ChallengeBack]:
    """What the refund takes back; `coupons`: the completions' coupons revoked (None: as
    many as it would take)."""
    return handlers.refund_plan(refund.connection, refund.program.calculator.program,
                                refund.purchase, refund.left, refund.whole,
                                coupons=coupons)  # fmt: skip
