"""The audit of a live database: the gaps that would let one tenant see another's rows."""
