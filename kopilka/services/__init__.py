"""Use cases: each loads what it needs, calls the domain and persists in one transaction."""
