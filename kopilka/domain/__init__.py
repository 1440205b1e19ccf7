"""The pure core of Kopilka: programs, receipts, the bonus calculator.

Nothing here does I/O or imports a framework; time is always a parameter.
Money and points are integers in minor units (kopecks, hundredths of a point);
`Decimal` appears only where text is read or written.
"""
