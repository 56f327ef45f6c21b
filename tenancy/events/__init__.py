"""Domain events: their records, the transactional outbox, and in-process subscribers."""
