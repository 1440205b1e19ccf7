"""Expiry: points that burn when their lot's time is up, with warnings before."""
