"""Bonus processing (seed 002): K1·K2·K3 accrual, P1–P3 redemption limits, explained."""

from kopilka.checkout.calculator.quote import Calculator
from kopilka.checkout.calculator.results import (
    CapEntry,
    ExplainEntry,
    Quote,
    QuoteLine,
    RedeemCaps,
)

__all__ = ["Calculator", "CapEntry", "ExplainEntry", "Quote", "QuoteLine", "RedeemCaps"]
