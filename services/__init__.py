"""The service layer: what HTTP routes, the CLI and worker tasks call (no web imports)."""
