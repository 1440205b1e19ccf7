"""Tiers: a member's level, earned by spend or purchases in a window."""
