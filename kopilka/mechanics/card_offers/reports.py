"""Card-linked offers' reports: for the merchant (one offer) and for the bank (every
offer, and the feed's matching).

An offer's figures (Cardlytics' set): cardholders **reached** (cards the offer is shown
to: live targeting, not held out), **activated**, **redeeming** (cards with a reward
that stands); spend on redeeming purchases; cashback pending, confirmed and paid; the
operator's fees; and **incremental sales** against the control group — the eligible
cards held out of the offer: the average spend at the merchant during the offer of a
card shown it, less that of a held-out card, times the cards shown it.

Reports read the tables as they are (no running totals: they are not on the hot path).
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, select

from kopilka.kernel.errors import NotFound
from kopilka.kernel.money import format_minor
from kopilka.mechanics.card_offers.handlers import Loaded, catalog_of, offer_of, shown_to
from kopilka.mechanics.card_offers.model import Card, Offer, in_control_group
from kopilka.mechanics.card_offers.tables import (
    clo_activations,
    clo_cards,
    clo_offers,
    clo_purchases,
    clo_reviews,
    clo_rewards,
    clo_transactions,
)
from kopilka.platform.csv_export import csv_writer
from kopilka.platform.db import reading
from kopilka.programs.handlers import LoadedProgram, load_program

STANDING = ("pending", "confirmed", "paid")  # a reward that stands (not refused, released…)
CSV_COLUMNS = ("offer", "merchant", "starts", "until", "reached", "activated", "redeeming",
               "redeeming_spend", "cashback_pending", "cashback_confirmed", "cashback_paid",
               "fees", "control_cards", "spend_per_reached_card", "spend_per_control_card",
               "incremental_sales", "budget", "spent")  # fmt: skip


def offer_report(engine: Engine, program_code: str, offer_code: str, *,
                 partner: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One offer's figures; `partner`: the caller's key is bound to that merchant (another
    merchant's offer is not found)."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        loaded = catalog_of(connection, program)
        offer = offer_of(loaded, offer_code)
        if partner is not None and offer.merchant != partner:
            raise NotFound(f"offer {offer_code!r} does not exist")
        return _figures(connection, program, loaded, offer, _cards(connection, program.program_id))


def bank_report(engine: Engine, program_code: str) -> dict[str, Any]:
    """Every offer's figures, and how the feed matched."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        loaded = catalog_of(connection, program)
        cards = _cards(connection, program.program_id)  # once, not once per offer
        offers = [_figures(connection, program, loaded, offer, cards)
                  for offer in loaded.by_code.values()]  # fmt: skip
        return {"offers": sorted(offers, key=lambda item: str(item["offer"])),
                "feed": _feed(connection, program.program_id)}  # fmt: skip


def bank_report_csv(engine: Engine, program_code: str) -> str:
    """The bank's report, an offer a row (every cell safe in a spreadsheet)."""
    report = bank_report(engine, program_code)
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report["offers"]:
        writer.writerow(row[column] for column in CSV_COLUMNS)
    return out.getvalue()


def _figures(connection: Connection, program: LoadedProgram, loaded: Loaded, offer: Offer,
             cards: dict[int, Card]) -> dict[str, Any]:  # fmt: skip
    digits = program.calculator.program.money_digits
    offer_id = loaded.offer_ids[offer.code]
    reached = [card for card in cards.values() if shown_to(offer, card, loaded)]
    control = [card for card in cards.values() if _held_out(offer, card, loaded)]
    spend = _spend_at(connection, program.program_id, offer)
    activated = connection.execute(select(func.count()).where(
        clo_activations.c.offer_id == offer_id)).scalar_one()  # fmt: skip
    rewards = connection.execute(select(
        clo_rewards.c.card_id, clo_rewards.c.status, clo_rewards.c.amount,
        clo_rewards.c.refunded, clo_rewards.c.cashback, clo_rewards.c.fee,
    ).where(clo_rewards.c.offer_id == offer_id)).all()  # fmt: skip
    standing = [reward for reward in rewards if reward.status in STANDING]
    cashback: dict[str, int] = defaultdict(int)
    for reward in standing:
        cashback[reward.status] += reward.cashback
    per_reached = _average([spend.get(card.token, 0) for card in reached])
    per_control = _average([spend.get(card.token, 0) for card in control])
    incremental = ((per_reached - per_control) * len(reached)).quantize(Decimal(1), ROUND_HALF_UP)
    budget_row = connection.execute(select(clo_offers.c.budget, clo_offers.c.spent).where(
        clo_offers.c.id == offer_id)).one()  # fmt: skip

    def money(minor: int | Decimal) -> str:
        return format_minor(int(minor), digits)

    return {
        "offer": offer.code, "merchant": offer.merchant, "starts": offer.starts.isoformat(),
        "until": offer.until.isoformat(), "reached": len(reached), "activated": activated,
        "redeeming": len({reward.card_id for reward in standing}),
        "redeeming_spend": money(sum(r.amount - r.refunded for r in standing)),
        "cashback_pending": money(cashback["pending"]),
        "cashback_confirmed": money(cashback["confirmed"]),
        "cashback_paid": money(cashback["paid"]),
        "fees": money(sum(reward.fee for reward in standing)),
        "control_cards": len(control),
        "spend_per_reached_card": money(per_reached.quantize(Decimal(1), ROUND_HALF_UP)),
        "spend_per_control_card": money(per_control.quantize(Decimal(1), ROUND_HALF_UP)),
        "incremental_sales": money(incremental) if control else None,
        "budget": None if budget_row.budget is None else money(budget_row.budget),
        "spent": money(budget_row.spent),
    }  # fmt: skip


def _average(values: list[int]) -> Decimal:
    return Decimal(sum(values)) / len(values) if values else Decimal(0)


def _held_out(offer: Offer, card: Card, loaded: Loaded) -> bool:
    """Eligible for the offer by its targeting, but in its control group."""
    if not in_control_group(offer, card.token):
        return False
    return shown_to(offer, card, loaded, ignore_control=True)


def _cards(connection: Connection, program_id: int) -> dict[int, Card]:
    return {row.id: Card(row.token, row.scheme, frozenset(row.segments),
                         None if row.latitude is None else float(row.latitude),
                         None if row.longitude is None else float(row.longitude))
            for row in connection.execute(select(clo_cards).where(
                clo_cards.c.program_id == program_id))}  # fmt: skip


def _spend_at(connection: Connection, program_id: int, offer: Offer) -> dict[str, int]:
    """Each card's spend at the offer's merchant during the offer (its purchases' amounts,
    as cleared, by the purchase's local day)."""
    first = clo_transactions.alias("first")
    rows = connection.execute(
        select(clo_cards.c.token, clo_purchases.c.amount, first.c.local_at)
        .join(clo_cards, clo_cards.c.id == clo_purchases.c.card_id)
        .join(first, (first.c.program_id == clo_purchases.c.program_id)
              & (first.c.transaction_id == clo_purchases.c.purchase))
        .where(clo_purchases.c.program_id == program_id,
               clo_purchases.c.merchant == offer.merchant)
    ).all()  # fmt: skip
    spend: dict[str, int] = defaultdict(int)
    for row in rows:
        if offer.starts <= date.fromisoformat(row.local_at[:10]) <= offer.until:
            spend[row.token] += row.amount
    return spend


def _feed(connection: Connection, program_id: int) -> dict[str, Any]:
    """How the feed's purchases matched: by merchant id, by descriptor rule, not at all;
    and the review queue."""
    authorised = clo_transactions.alias("authorised")
    cleared_alone = (clo_transactions.c.kind == "clearing") & ~exists().where(
        authorised.c.program_id == program_id, authorised.c.kind == "authorisation",
        authorised.c.transaction_id == clo_transactions.c.original)  # fmt: skip
    rows = connection.execute(
        select(clo_transactions.c.rule, func.count())
        .where(clo_transactions.c.program_id == program_id,
               (clo_transactions.c.kind == "authorisation") | cleared_alone,
               clo_transactions.c.problem.is_(None))
        .group_by(clo_transactions.c.rule)
    ).all()  # a purchase once: its authorisation, or its clearing when none came  # fmt: skip
    by_kind: dict[str, int] = defaultdict(int)
    for rule, count in rows:
        by_kind["unmatched" if rule is None else str(rule).split(":")[0]] += count
    queue: dict[str, int] = {str(status): int(count) for status, count in connection.execute(
        select(clo_reviews.c.status, func.count()).where(clo_reviews.c.program_id == program_id)
        .group_by(clo_reviews.c.status))}  # fmt: skip
    return {"matched_by_merchant_id": by_kind["mid"],
            "matched_by_descriptor": by_kind["descriptor"], "unmatched": by_kind["unmatched"],
            "review_open": queue.get("open", 0),
            "review_decided": queue.get("matched", 0)}  # fmt: skip
