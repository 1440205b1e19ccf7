"""Tests of the mechanic protocol, with a mechanic of their own."""
