"""Programs: program files applied as versions, rule drafts and their console pages."""
