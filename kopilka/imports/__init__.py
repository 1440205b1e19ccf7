"""Importing members and historical receipts from another platform's CSV files."""
