"""Points for actions (issue 18): a catalogue of actions beyond purchases, reported by a
partner key or a signed callback, each report once by its external id."""
