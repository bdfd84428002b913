"""Operator and developer tooling: the `iomki` CLI, the demo, the launcher, the embedded Kafka, the event catalogue.

It imports the platform (`shared`, and the services it launches by name); the platform never imports it.
"""
