"""The audit trail (hash-chained records of every change) and lineage (what made what)."""
