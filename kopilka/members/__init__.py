"""Members: registration, references, links, balances, events, the member page."""
