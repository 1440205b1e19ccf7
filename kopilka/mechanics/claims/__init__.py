"""Claims (issue 19, the service centre of seed 000): a purchase that earned nothing is
claimed, the partner confirms or rejects it, and a confirmed claim is processed as the
purchase it should have been — once, at that date's program version."""
