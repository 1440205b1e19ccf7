"""Closed clubs and privileges (issue 19): clubs joined by payment or by invitation,
with their own rules and privileges — products only members may buy, early access,
flags a point of sale shows."""
