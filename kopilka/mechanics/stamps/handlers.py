"""The stamp cards' use cases: what a receipt does to each card, what a refund takes
back, and what a member and the console see. The purchase's part runs on what its load
read (`member_stamps`, one row per card); a refund and the pages query for themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from kopilka.checkout.mechanic import LineLeft
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.receipt import Receipt
from kopilka.mechanics.stamps.model import OnRefund, StampCard, StampLine, advance, message
from kopilka.mechanics.stamps.section import KEY
from kopilka.mechanics.stamps.tables import STAMPS, member_stamps, purchase_stamps
from kopilka.members.standing import local_day
from kopilka.platform.statements import Bump, add_to_totals
from kopilka.platform.tables import members
from kopilka.programs.handlers import load_program


def cards_of(program: Program) -> tuple[StampCard, ...]:
    cards = program.sections.get(KEY)
    return cards if isinstance(cards, tuple) else ()


@dataclass(frozen=True, slots=True)
class CardProgress:
    """What one receipt does to one card."""

    card: StampCard
    before: int  # stamps held before the receipt
    earned: int
    rewards: int  # rewards the receipt completes
    after: int  # stamps held after it

    def bump(self, member_id: int) -> Bump:
        return Bump(STAMPS, (member_id, self.card.code),
                    (self.after - self.before, self.earned, self.rewards))  # fmt: skip


def stamp_lines(program: Program, receipt: Receipt, amounts: Mapping[int, int]) -> list[StampLine]:
    """The receipt's lines as the cards see them: `amounts` is what the member paid for
    each line (by `n`) after every discount."""
    return [
        StampLine(line.sku, program.category_lineage(line.category), line.qty,
                  amounts.get(line.n, 0))
        for line in receipt.lines
    ]  # fmt: skip


def progress(
    cards: Sequence[StampCard], held: Mapping[str, int], lines: Sequence[StampLine], day: date
) -> list[CardProgress]:
    """Each card the receipt earns stamps on, and where it leaves it."""
    moved = []
    for card in cards:
        earned = card.earned(lines, day)
        if earned:
            before = held.get(card.code, 0)
            rewards, after = advance(card, before, earned)
            moved.append(CardProgress(card, before, earned, rewards, after))
    return moved


def reward_words(card: StampCard, point_digits: int) -> str:
    reward = card.reward
    if reward.note:
        return reward.note
    if reward.points is not None:
        return f"{format_minor(reward.points, point_digits)} points"
    return f"a coupon ({reward.coupon})"


def progress_json(moved: CardProgress, point_digits: int) -> dict[str, Any]:
    card = moved.card
    words = reward_words(card, point_digits)
    reward: dict[str, Any] = {"note": words}
    if card.reward.points is not None:
        reward["points"] = format_minor(card.reward.points * moved.rewards, point_digits)
    else:
        reward["coupon_campaign"] = card.reward.coupon
    return {
        "card": card.code, "name": card.name, "earned": moved.earned, "held": moved.after,
        "of": card.stamps, "to_go": card.stamps - moved.after, "rewards": moved.rewards,
        "reward": reward, "message": message(card, moved.after, moved.rewards, words),
    }  # fmt: skip


# — a refund —


@dataclass(frozen=True, slots=True)
class CardBack:
    """What a refund takes back on one card of the purchase."""

    row_id: int  # the purchase's row of that card
    card: str
    stamps: int  # stamps taken back
    rewards: int  # rewards clawed back
    points: int  # their points
    held_change: int  # what the card holds after, less what it held

    def bump(self, member_id: int) -> Bump:
        return Bump(STAMPS, (member_id, self.card), (self.held_change, -self.stamps, -self.rewards))


def refund_plan(
    connection: Connection, program: Program, purchase: Any, left: Sequence[LineLeft],
    *, undo: bool = False, coupons: int | None = None,
) -> list[CardBack]:  # fmt: skip
    """What a refund (the purchase's lines as its refunds leave them: `left`) takes back
    on each card the purchase earned on. A card keeps what the lines still kept earn; the
    stamps above that go back. When the card would hold less than nothing, the rewards
    this purchase gave go back first (`claw_back`): its points with the refund's, a coupon
    when the coupons mechanic revoked it unused (`coupons`: how many it revoked; None:
    asking whether one would go); what is still missing the card owes. `keep` forgives
    the stamps instead. `undo`: the purchase never counted (a held one cancelled): all it
    earned goes back, and every reward whose points (never given) or coupon (revoked) can
    go."""
    if purchase.member_id is None:
        return []
    rows = connection.execute(
        select(purchase_stamps).where(purchase_stamps.c.purchase_id == purchase.id)
    ).all()
    if not rows:
        return []
    cards = {card.code: card for card in cards_of(program)}
    held = _held(connection, purchase.member_id, [row.card for row in rows])
    day = local_day(purchase.created_at, program.timezone)
    lines = [StampLine(line.sku, program.category_lineage(line.category), line.qty, line.amount)
             for line in left]  # fmt: skip
    revocable = Revocable(coupons)
    plan = []
    for row in rows:
        card = cards.get(row.card)
        kept = 0 if undo else _kept(card, lines, day, int(row.stamps))
        back = int(row.stamps) - int(row.stamps_back) - kept
        claw = undo or card is None or card.on_refund is OnRefund.CLAW_BACK
        if back > 0 or undo:
            plan.append(_card_back(row, held.get(row.card, 0), back, claw, revocable, undo))
    return plan


class Revocable:
    """The coupon rewards a refund may take back: those the coupons mechanic revoked."""

    def __init__(self, count: int | None) -> None:
        self.left = count

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _kept(card: StampCard | None, left: Sequence[StampLine], day: date, stamps: int) -> int:
    """The stamps the lines still kept earn (a card no longer in the program: none once
    the last line is returned, all before)."""
    if card is None:
        return stamps if any(line.qty > 0 for line in left) else 0
    return min(stamps, card.earned(left, day))


def _card_back(row: Any, held: int, back: int, claw: bool, coupons: Revocable,
               undo: bool) -> CardBack:  # fmt: skip
    """What goes back on one card: `back` stamps, and the purchase's rewards as far as
    they must and can (the card's size as it was when they were given)."""
    after = held - back
    rewards = 0
    can_claw = int(row.rewards) - int(row.rewards_back)
    per_reward = int(row.points) // int(row.rewards) if int(row.rewards) else 0
    size = int(row.size)
    if claw:
        while after < 0 and rewards < can_claw and (per_reward or coupons.take()):
            rewards += 1
            after += size
    else:
        after = max(after, 0)  # the reward is kept: its stamps are forgiven
    points = 0 if undo else rewards * per_reward  # a cancelled hold's were never given
    return CardBack(int(row.id), row.card, back, rewards, points, after - held)


def _held(connection: Connection, member_id: int, codes: Sequence[str]) -> dict[str, int]:
    rows = connection.execute(
        select(member_stamps.c.card, member_stamps.c.held).where(
            member_stamps.c.member_id == member_id, member_stamps.c.card.in_(codes)
        )
    ).all()
    return {card: int(held) for card, held in rows}


def take_back(connection: Connection, member_id: int, plan: Sequence[CardBack]) -> None:
    """Write a refund's plan: the purchase's rows and the member's running state."""
    for back in plan:
        row = purchase_stamps.c
        connection.execute(
            update(purchase_stamps).where(row.id == back.row_id)
            .values(stamps_back=row.stamps_back + back.stamps,
                    rewards_back=row.rewards_back + back.rewards)
        )  # fmt: skip
    add_to_totals(connection, [back.bump(member_id) for back in plan])


def back_json(plan: Sequence[CardBack], point_digits: int) -> list[dict[str, Any]]:
    return [{"card": back.card, "stamps": back.stamps, "rewards": back.rewards,
             "points": format_minor(back.points, point_digits)} for back in plan]  # fmt: skip


# — what a member and the console see —


def member_cards(
    connection: Connection, program: Program, member_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The program's cards in force and those the member holds stamps on."""
    rows = {row.card: row for row in connection.execute(
        select(member_stamps).where(member_stamps.c.member_id == member_id)
    ).all()}  # fmt: skip
    today = now.date()
    shown = []
    for card in cards_of(program):
        row = rows.get(card.code)
        running = (card.valid_until is None or today <= card.valid_until) and (
            card.valid_from is None or today >= card.valid_from
        )
        if row is None and not running:
            continue
        held = int(row.held) if row else 0
        words = reward_words(card, program.points.precision)
        shown.append({"card": card.code, "name": card.name, "held": held, "of": card.stamps,
                      "to_go": card.stamps - held, "rewards": int(row.rewards) if row else 0,
                      "reward": words, "running": running,
                      "message": message(card, held, 0, words)})  # fmt: skip
    return shown


def card_figures(engine: Engine, program_code: str) -> list[dict[str, Any]]:
    """Per card: members in progress, members with a reward, stamps, rewards and their
    cost in points (net of refunds)."""
    held = member_stamps.c
    bought = purchase_stamps.c
    with engine.connect() as connection:
        loaded = load_program(connection, program_code)
        program, program_id = loaded.calculator.program, loaded.program_id
        standing = {
            row.card: row
            for row in connection.execute(
                select(
                    held.card,
                    func.count().filter(held.held > 0).label("in_progress"),
                    func.count().filter(held.rewards > 0).label("rewarded"),
                    func.coalesce(func.sum(held.rewards), 0).label("rewards"),
                    func.coalesce(func.sum(held.earned), 0).label("stamps"),
                )
                .join(members, members.c.id == held.member_id)
                .where(members.c.program_id == program_id)
                .group_by(held.card)
            ).all()
        }
        cost: dict[str, int] = dict(connection.execute(  # type: ignore[arg-type]
            select(bought.card, func.coalesce(func.sum(bought.points), 0)
                   - func.coalesce(func.sum(bought.points * bought.rewards_back
                                            / func.nullif(bought.rewards, 0)), 0))
            .where(bought.program_id == program_id).group_by(bought.card)
        ).all())  # fmt: skip
    digits = program.points.precision
    figures = []
    for card in cards_of(program):
        row = standing.get(card.code)
        figures.append({
            "card": card.code, "name": card.name, "of": card.stamps,
            "reward": reward_words(card, digits),
            "in_progress": int(row.in_progress) if row else 0,
            "rewarded": int(row.rewarded) if row else 0,
            "stamps": int(row.stamps) if row else 0,
            "rewards": int(row.rewards) if row else 0,
            "cost": format_minor(int(cost.get(card.code) or 0), digits),
        })  # fmt: skip
    return figures
