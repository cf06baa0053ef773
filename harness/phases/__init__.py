"""One module per rehearsal phase; each exposes NAME and execute(ctx)."""
