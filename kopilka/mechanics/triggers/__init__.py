"""Triggers: rewards on occasions (a birthday, inactivity, a sign-up)."""
