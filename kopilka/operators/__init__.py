"""Operators and keys: who may act on a program, the console's sessions."""
