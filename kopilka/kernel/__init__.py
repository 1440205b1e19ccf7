"""The pure kernel: money, points, receipts, the program's core, the ledger's terms.

Nothing here does I/O or imports a framework; time is always a parameter. Money and
points are integers in minor units; `Decimal` appears only where text is read or written."""
