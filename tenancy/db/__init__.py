"""The database layer: engines, tenant transactions, sessions and the unit-of-work base."""
