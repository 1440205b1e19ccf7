"""The rows a feed message leaves, built once for both paths that write them: the online
path (a message at a time, handlers.py and online.py) and a stored batch (stored.py), so
the two leave the very same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kopilka.mechanics.card_offers import terms
from kopilka.mechanics.card_offers.feed import Change, Judged, Known, Reward
from kopilka.mechanics.card_offers.payouts import webhook_row

if TYPE_CHECKING:
    from kopilka.mechanics.card_offers.handlers import Loaded


def transaction_row(program_id: int, loaded: Loaded, card_id: int, sent: terms.MessageSent,
                    judged: Judged, digest: str, answer: dict[str, Any],
                    now: datetime) -> dict[str, Any]:  # fmt: skip
    """The message as taken: what was sent, where it matched, each offer's verdict, and
    the answer a message sent again is given."""
    match = judged.match
    return {
        "program_id": program_id, "transaction_id": sent.transaction_id,
        "kind": sent.kind.value, "card_id": card_id, "amount": sent.amount,
        "currency": sent.currency, "at": sent.at.astimezone(UTC),
        "local_at": sent.at.isoformat(), "scheme": sent.scheme,
        "merchant_mid": sent.merchant_id, "descriptor": sent.descriptor, "mcc": sent.mcc,
        "original": sent.original,
        "location_id": None if match is None else loaded.location_ids[match.location],
        "rule": None if match is None else match.rule, "problem": judged.problem,
        "verdicts": [[offer, reason.value] for offer, reason in judged.verdicts],
        "body_hash": digest, "answer": answer, "received_at": now,
    }  # fmt: skip


def purchase_values(loaded: Loaded, known: Known) -> dict[str, Any]:
    """What a purchase left for the messages about it (`Known`), as its row's columns."""
    match = known.match
    return {
        "location_id": None if match is None else loaded.location_ids[match.location],
        "merchant": None if match is None else match.merchant,
        "rule": None if match is None else match.rule,
        "amount": known.amount, "cleared": known.cleared, "released": known.released,
        "offers": list(known.offers),
    }  # fmt: skip


def reward_values(reward: Reward) -> dict[str, Any]:
    """A reward's state, as its row's columns."""
    return {"status": reward.status.value, "amount": reward.amount, "cashback": reward.cashback,
            "fee": reward.fee, "granted": reward.granted, "refunded": reward.refunded,
            "payable_at": reward.payable_at}  # fmt: skip


def review_row(program_id: int, loaded: Loaded, sent: terms.MessageSent) -> dict[str, Any]:
    """An unmatched purchase, for review, with the locations it most resembles (its
    transaction's row id added by the writer)."""
    suggestions = loaded.catalog.suggestions(sent.descriptor)
    return {"program_id": program_id, "descriptor": sent.descriptor, "mcc": sent.mcc,
            "suggestions": [[code, str(score)] for code, score in suggestions],
            "status": "open"}  # fmt: skip


def change_notice(program_id: int, change: Change, card: str, now: datetime) -> dict[str, Any]:
    """The bank's webhook of a reward's change, as its outbox row: keyed by the message
    and the offer, so a message taken twice never notifies twice."""
    event = f"card_transaction.{change.status}"
    return webhook_row(program_id=program_id, event=event, key=f"{change.message}:{change.offer}",
                       now=now, body={
                           "event": event, "transaction_id": change.message,
                           "purchase": change.reward, "offer": change.offer, "card": card,
                           "status": change.status.value, "reason": change.reason,
                           "cashback_minor": change.cashback,
                           "cashback_change_minor": change.cashback_delta,
                           "fee_minor": change.fee})  # fmt: skip
