"""Card-linked offers: a bank's card feed matched to merchants' offers (issue 20)."""
