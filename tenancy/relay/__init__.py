"""The outbox relay: claims committed events and publishes them to a Kafka-API broker."""
