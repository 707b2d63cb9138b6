"""Reads: one module per workflow area, querysets and aggregates with no N+1."""
