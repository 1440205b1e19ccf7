"""Cashback: money back on what a member paid, with budgets and payouts."""
