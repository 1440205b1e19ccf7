"""Discounts: the program's campaigns that take money off a receipt."""
