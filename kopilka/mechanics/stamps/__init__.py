"""Stamp cards: a stamp per qualifying purchase, unit or amount; a reward at N (issue 18)."""
