"""Charity (issue 19): members donate points, or a round-up of each purchase, to a
charity the program lists; a report per charity per period."""
