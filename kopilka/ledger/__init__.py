"""The ledger's storage: accounts, transfers and lots, the wallet, `verify`."""
