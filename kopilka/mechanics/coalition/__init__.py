"""The coalition (issue 19, begun): partners' terms and their settlement."""
