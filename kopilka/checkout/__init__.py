"""The checkout: the calculator (pure) and the purchase pipeline over the mechanics."""
