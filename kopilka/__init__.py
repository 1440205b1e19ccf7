"""Kopilka — an open-source loyalty platform.

Bonus points computed by rules (base rate × client × product × behaviour
coefficients), with exact money, an explanation for every figure, and a ledger
that never loses or duplicates a point.
"""

__version__ = "0.1.0"
