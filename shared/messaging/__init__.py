"""Messaging: the broker connection and topics, the outbox relay, idempotent consumers, group commit."""
