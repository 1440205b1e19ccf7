"""Exchange of points between programs ("roaming", issue 19): a member moves points from
one program to another at the pair's rate, as a saga (hold at the source → credit at
the target → confirm, reversed on failure or time-out), within one Kopilka or with an
outside program over a signed HTTP protocol; a daily reconciliation lists mismatches."""
