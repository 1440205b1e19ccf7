"""The challenges' use cases: what a receipt does to each challenge (from what the
purchase's load read), what a refund takes back, a reward's tier raise, and what a
member and the console see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from kopilka.checkout.mechanic import LineLeft
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.receipt import Receipt
from kopilka.mechanics.challenges.model import (
    EVER,
    Badge,
    Challenge,
    ChallengeLine,
    Goal,
    Standing,
    contribution,
    period_key,
    step,
)
from kopilka.mechanics.challenges.section import BADGES, CHALLENGES
from kopilka.mechanics.challenges.tables import (
    CATEGORIES,
    member_badges,
    member_challenges,
    purchase_challenges,
)
from kopilka.mechanics.challenges.tables import CHALLENGES as RUNNING
from kopilka.platform.statements import Bump, add_to_totals
from kopilka.platform.tables import member_tiers, members
from kopilka.programs.handlers import load_program

TIER_DAYS = 365  # a tier a challenge gives holds this long before a review may lower it


def challenges_of(program: Program) -> tuple[Challenge, ...]:
    found = program.sections.get(CHALLENGES)
    return found if isinstance(found, tuple) else ()


def badges_of(program: Program) -> dict[str, Badge]:
    found = program.sections.get(BADGES)
    return {badge.code: badge for badge in found} if isinstance(found, tuple) else {}


def earliest_period(challenges: Sequence[Challenge], day: date) -> str:
    """The first day of the earliest period in force among `challenges` on `day`: the
    purchase's load reads the member's rows from it on ("ever" sorts after every day)."""
    return min((period_key(c.period, day) for c in challenges if c.period), default=EVER)


def challenge_lines(
    program: Program, receipt: Receipt, amounts: Mapping[int, int]
) -> list[ChallengeLine]:
    return [
        ChallengeLine(line.sku, program.category_lineage(line.category),
                      line.category, int(line.qty), amounts.get(line.n, 0))
        for line in receipt.lines
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Move:
    """What one receipt does to one challenge."""

    challenge: Challenge
    period: str
    before: Standing
    after: Standing

    @property
    def completed(self) -> bool:
        return self.after.completions > self.before.completions

    def bump(self, member_id: int) -> Bump:
        b, a = self.before, self.after
        return Bump(RUNNING, (member_id, self.challenge.code, self.period),
                    (a.progress - b.progress, a.marker - b.marker, a.spare - b.spare,
                     a.completions - b.completions))  # fmt: skip


def moves(
    challenges: Sequence[Challenge], standing: Mapping[tuple[str, str], Standing],
    known: frozenset[str], lines: Sequence[ChallengeLine], day: date,
) -> list[Move]:  # fmt: skip
    """Each running challenge the receipt moves, and where it leaves it."""
    found = []
    for challenge in challenges:
        if not challenge.running(day):
            continue
        key = period_key(challenge.period, day)
        before = standing.get((challenge.code, key), Standing())
        after = step(challenge, before, contribution(challenge, lines, known), day)
        if after != before:
            found.append(Move(challenge, key, before, after))
    return found


def category_bumps(member_id: int, lines: Sequence[ChallengeLine]) -> list[Bump]:
    return [Bump(CATEGORIES, (member_id, category), (1,))
            for category in sorted({line.category for line in lines if line.category})]  # fmt: skip


def shown_amount(challenge: Challenge, amount: int, program: Program) -> str | int:
    """A progress or a target as people read it: money for a spend goal."""
    if challenge.goal is Goal.SPEND:
        return format_minor(amount, program.money_digits)
    return amount


def message(challenge: Challenge, progress: int, completed: bool, program: Program) -> str:
    have = shown_amount(challenge, progress, program)
    need = shown_amount(challenge, challenge.target, program)
    if completed:
        return f"{challenge.name}: done ({have} of {need})"
    return f"{challenge.name}: {have} of {need}"


def reward_json(challenge: Challenge, program: Program) -> dict[str, Any]:
    reward = challenge.reward
    shown: dict[str, Any] = {}
    if reward.points:
        shown["points"] = format_minor(reward.points, program.points.precision)
    if reward.coupon:
        shown["coupon_campaign"] = reward.coupon
    if reward.badge:
        badge = badges_of(program).get(reward.badge)
        shown["badge"] = {"code": reward.badge, "name": badge.name if badge else reward.badge}
    if reward.tier:
        shown["tier"] = reward.tier
    return shown


def move_json(move: Move, program: Program) -> dict[str, Any]:
    challenge = move.challenge
    return {
        "challenge": challenge.code, "name": challenge.name, "goal": challenge.goal.value,
        "period": move.period,
        "progress": shown_amount(challenge, move.after.progress, program),
        "target": shown_amount(challenge, challenge.target, program),
        "completed": move.completed, "reward": reward_json(challenge, program),
        "message": message(challenge, move.after.progress, move.completed, program),
    }  # fmt: skip


def raise_tier(connection: Connection, program: Program, program_id: int, member_id: int,
               tier: str, reason: str, now: datetime) -> bool:  # fmt: skip
    """Raise the member to `tier` (never lower them): set by hand until `TIER_DAYS` on,
    so no review lowers it before then. Whether it changed."""
    levels = [level.code for level in program.tiers.levels] if program.tiers else []
    if tier not in levels:
        return False
    current = connection.execute(
        select(member_tiers.c.code).where(member_tiers.c.member_id == member_id)
    ).scalar()
    if current in levels and levels.index(current) >= levels.index(tier):
        return False
    values = {"code": tier, "since": now, "until": now + timedelta(days=TIER_DAYS),
              "manual": True, "reason": reason, "downgrade_at": None}  # fmt: skip
    if current is None:
        connection.execute(
            insert(member_tiers).values(member_id=member_id, program_id=program_id, **values)
        )
    else:
        connection.execute(
            update(member_tiers).where(member_tiers.c.member_id == member_id).values(values)
        )
    return True


# — a refund —


@dataclass(frozen=True, slots=True)
class ChallengeBack:
    row_id: int
    challenge: str
    period: str
    progress: int  # progress taken back
    completion: bool  # the completion (and its reward) taken back
    points: int

    def bump(self, member_id: int) -> Bump:
        return Bump(RUNNING, (member_id, self.challenge, self.period),
                    (-self.progress, 0, 0, -1 if self.completion else 0))  # fmt: skip


def refund_plan(connection: Connection, program: Program, purchase: Any,
                left: Sequence[LineLeft], whole: bool, *, undo: bool = False,
                coupons: int | None = 0) -> list[ChallengeBack]:  # fmt: skip
    """What a refund takes back of each challenge the purchase moved: all of it with the
    last of the receipt; before, what the returned lines gave (the units or money; a
    visit, a week or a category once no qualifying line is left). A purchase that
    completed a challenge gives its completion back once the progress falls under the
    target — with its points, and its coupon when the coupons mechanic revoked it unused
    (`coupons`: how many it revoked; None: asking whether one would go): a completion
    whose coupon was already used stands."""
    if purchase.member_id is None:
        return []
    rows = connection.execute(
        select(purchase_challenges).where(purchase_challenges.c.purchase_id == purchase.id)
    ).all()
    if not rows:
        return []
    known = {challenge.code: challenge for challenge in challenges_of(program)}
    lines = None if whole else [
        ChallengeLine(line.sku, program.category_lineage(line.category),
                      line.category, int(line.qty), line.amount)
        for line in left
    ]  # fmt: skip
    revocable = None if coupons is None else [coupons]
    plan = []
    for row in rows:
        challenge = known.get(row.challenge)
        kept = _kept(challenge, row, lines)
        back = int(row.progress) - int(row.taken_back) - kept
        now_at = _progress(connection, purchase.member_id, row.challenge, row.period)
        completion = (
            bool(row.completed)
            and not row.reward_back
            and (whole or challenge is None or now_at - back < challenge.target)
            and _coupon_goes(challenge, revocable)
        )
        points = int(row.points) if completion and not undo else 0
        if back or completion:
            plan.append(ChallengeBack(int(row.id), row.challenge, row.period, back, completion,
                                      points))  # fmt: skip
    return plan


def _coupon_goes(challenge: Challenge | None, revocable: list[int] | None) -> bool:
    """Whether a completion can go back as far as its coupon is concerned. One that gave
    points goes back with them whatever became of its coupon (the refund's points are
    planned before the coupons mechanic revokes anything); one that gave only a coupon
    goes back when its coupon was revoked."""
    reward = challenge.reward if challenge is not None else None
    if reward is None or not reward.coupon or reward.points or revocable is None:
        return True
    if revocable[0] <= 0:
        return False  # used: the completion stands
    revocable[0] -= 1
    return True


def _kept(challenge: Challenge | None, row: Any, left: list[ChallengeLine] | None) -> int:
    """The progress the lines still kept give (`left` None: nothing is kept)."""
    given = int(row.progress) - int(row.taken_back)
    if left is None:
        return 0
    if challenge is None:
        return given  # no longer in the program: kept until the last of the receipt
    if challenge.goal is Goal.WEEKLY_STREAK and given <= 0:
        return given  # the purchase restarted a streak: a refund does not mend it
    still = contribution(challenge, left, frozenset())
    if challenge.goal in (Goal.UNITS, Goal.SPEND, Goal.NEW_CATEGORIES):
        return max(0, min(given, still))
    return given if still else 0  # a visit or a week: kept while a qualifying line is


def _progress(connection: Connection, member_id: int, challenge: str, period: str) -> int:
    c = member_challenges.c
    found = connection.execute(
        select(c.progress).where(c.member_id == member_id, c.challenge == challenge,
                                 c.period == period)
    ).scalar()  # fmt: skip
    return int(found or 0)


def completed_by(connection: Connection, purchase_id: int) -> list[str]:
    """The challenges a purchase completed (and no refund or cancel took back)."""
    row = purchase_challenges.c
    return list(connection.execute(
        select(row.challenge).where(row.purchase_id == purchase_id, row.completed == 1,
                                    row.reward_back == 0)
    ).scalars())  # fmt: skip


def take_back(connection: Connection, purchase_id: int, member_id: int,
              plan: Sequence[ChallengeBack], now: datetime) -> None:  # fmt: skip
    row = purchase_challenges.c
    for back in plan:
        connection.execute(
            update(purchase_challenges).where(row.id == back.row_id)
            .values(taken_back=row.taken_back + back.progress,
                    reward_back=1 if back.completion else row.reward_back)
        )  # fmt: skip
        if back.completion:
            badge = member_badges.c
            connection.execute(
                update(member_badges)
                .where(badge.purchase_id == purchase_id, badge.challenge == back.challenge,
                       badge.revoked_at.is_(None))
                .values(revoked_at=now)
            )  # fmt: skip
    add_to_totals(connection, [back.bump(member_id) for back in plan])


def back_json(plan: Sequence[ChallengeBack], program: Program) -> list[dict[str, Any]]:
    return [{"challenge": back.challenge, "period": back.period, "progress": back.progress,
             "completion": back.completion,
             "points": format_minor(back.points, program.points.precision)}
            for back in plan]  # fmt: skip


# — what a member and the console see —


def member_challenges_json(
    connection: Connection, program: Program, member_id: int, now: datetime, day: date
) -> dict[str, Any] | None:
    """The challenges running today with the member's progress in their current period,
    and the badges the member holds."""
    challenges = [c for c in challenges_of(program) if c.running(day)]
    c = member_challenges.c
    rows = {(row.challenge, row.period): row for row in connection.execute(
        select(c.challenge, c.period, c.progress, c.completions)
        .where(c.member_id == member_id, c.period >= earliest_period(challenges, day))
    ).all()} if challenges else {}  # fmt: skip
    shown = []
    for challenge in challenges:
        key = period_key(challenge.period, day)
        row = rows.get((challenge.code, key))
        progress, done = (int(row.progress), bool(row.completions)) if row else (0, False)
        shown.append({"challenge": challenge.code, "name": challenge.name,
                      "goal": challenge.goal.value, "period": key,
                      "progress": shown_amount(challenge, progress, program),
                      "target": shown_amount(challenge, challenge.target, program),
                      "completed": done, "reward": reward_json(challenge, program),
                      "message": message(challenge, progress, done, program)})  # fmt: skip
    badges = member_badges_json(connection, program, member_id)
    if not shown and not badges:
        return None
    del now
    return {"challenges": shown, "badges": badges}


def member_badges_json(
    connection: Connection, program: Program, member_id: int
) -> list[dict[str, Any]]:
    b = member_badges.c
    rows = connection.execute(
        select(b.badge, func.count().label("times"), func.min(b.earned_at).label("first"))
        .where(b.member_id == member_id, b.revoked_at.is_(None))
        .group_by(b.badge).order_by(func.min(b.earned_at), b.badge)
    ).all()  # fmt: skip
    known = badges_of(program)
    return [{"badge": row.badge,
             "name": known[row.badge].name if row.badge in known else row.badge,
             "description": known[row.badge].description if row.badge in known else None,
             "times": int(row.times), "since": row.first.isoformat()}
            for row in rows]  # fmt: skip


def challenge_figures(engine: Engine, program_code: str) -> dict[str, Any]:
    """Per challenge: members in progress, completions, the points its rewards cost (net
    of refunds); per badge: the members holding it."""
    c, p, b = member_challenges.c, purchase_challenges.c, member_badges.c
    with engine.connect() as connection:
        loaded = load_program(connection, program_code)
        program, program_id = loaded.calculator.program, loaded.program_id
        standing = {
            row.challenge: row
            for row in connection.execute(
                select(
                    c.challenge,
                    func.count().filter(c.progress > 0).label("members"),
                    func.coalesce(func.sum(c.completions), 0).label("completions"),
                )
                .join(members, members.c.id == c.member_id)
                .where(members.c.program_id == program_id)
                .group_by(c.challenge)
            ).all()
        }
        cost = {
            row.challenge: int(row.points or 0)
            for row in connection.execute(
                select(p.challenge, func.sum(p.points).filter(p.reward_back == 0).label("points"))
                .where(p.program_id == program_id)
                .group_by(p.challenge)
            ).all()
        }
        holders = {row.badge: int(row.holders) for row in connection.execute(
            select(b.badge, func.count(func.distinct(b.member_id)).label("holders"))
            .where(b.program_id == program_id, b.revoked_at.is_(None)).group_by(b.badge)
        ).all()}  # fmt: skip
    digits = program.points.precision
    return {
        "challenges": [{
            "challenge": challenge.code, "name": challenge.name, "goal": challenge.goal.value,
            "target": shown_amount(challenge, challenge.target, program),
            "period": challenge.period.value if challenge.period else EVER,
            "members": int(standing[challenge.code].members) if challenge.code in standing else 0,
            "completions": int(standing[challenge.code].completions)
            if challenge.code in standing else 0,
            "cost": format_minor(cost.get(challenge.code, 0), digits),
        } for challenge in challenges_of(program)],
        "badges": [{"badge": badge.code, "name": badge.name, "holders": holders.get(badge.code, 0)}
                   for badge in badges_of(program).values()],
    }  # fmt: skip
