"""How an agency subscribes to iomki's public events: confluent-kafka and the CloudEvents SDK, nothing of iomki.

    pip install confluent-kafka cloudevents
    python agency_subscriber.py --bootstrap kafka.iomki.example:9093 --group agency-dinkes-jabar

Every message on a public topic is a CloudEvents 1.0 event in structured mode: the value is the whole event as
JSON, the `content-type` header is `application/cloudevents+json`, the key is the plant's `facility_id` (also the
event's `subject`), so all events about one plant arrive in order. `docs/events.md` lists every event type and its
fields. Ignore fields you do not know: new optional fields are added without a new `type`; a breaking change
arrives as a new type (`iomki.<Name>.v2`) published beside the old one.

Each agency reads with its own consumer group (its principal may read `iomki.permits`, `iomki.reports`,
`iomki.incidents`, `iomki.alerts` and its own groups, nothing else). The first run starts from the earliest
retained event; afterwards the group's committed offsets say where to resume.

Each decoded event is written to standard output as one JSON line, ready for `jq` or a loader; diagnostics go
to standard error.

The platform creates its topics when it starts (`make run` locally); until then the broker reports them unknown,
which is logged, and librdkafka subscribes as soon as they exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import KafkaMessage, from_binary, from_structured
from confluent_kafka import Consumer, Message

PUBLIC_TOPICS: tuple[str, ...] = ("iomki.permits", "iomki.reports", "iomki.incidents", "iomki.alerts", "iomki.ppkm",
                                 "iomki.supervision")
STRUCTURED = "application/cloudevents"

log = logging.getLogger("agency_subscriber")


def consumer_config(bootstrap: str, group: str, security: dict[str, str] | None = None) -> dict[str, Any]:
    """librdkafka settings for an agency: its own group, from the earliest event on first run, commit after use."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        # Offsets are stored only after an event was handed over, so a crash re-reads rather than skips.
        "enable.auto.offset.store": False,
        "client.id": group,
        **(security or {}),
    }


def to_cloudevent(message: Message) -> CloudEvent:
    """A Kafka message as a CloudEvent: structured mode (iomki's), or binary mode for completeness."""
    headers = {name: value or b"" for name, value in (message.headers() or [])}
    kafka_message = KafkaMessage(headers=headers, key=message.key(), value=message.value() or b"")
    if headers.get("content-type", b"").decode().startswith(STRUCTURED):
        return from_structured(kafka_message)
    return from_binary(kafka_message, data_unmarshaller=json.loads)


def describe(event: CloudEvent, message: Message) -> dict[str, Any]:
    """The JSON line printed for one event: where it was read and its key, its CloudEvents attributes, its data."""
    return {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "key": (message.key() or b"").decode(errors="replace") or None,
        "id": event["id"],
        "type": event["type"],
        "source": event["source"],
        "subject": event.get("subject"),
        "time": event.get("time"),
        "correlationid": event.get("correlationid"),
        "data": event.get_data(),
    }


def consume(
    bootstrap: str,
    group: str,
    *,
    topics: Iterable[str] = PUBLIC_TOPICS,
    max_events: int | None = None,
    timeout: float | None = None,
    on_event: Callable[[dict[str, Any]], None] = lambda line: None,
    security: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Read events until `max_events` were decoded or `timeout` seconds passed; returns what was decoded.

    A message that is not a CloudEvent is logged and skipped (its offset is stored, so it is not read again):
    iomki never publishes one on a public topic, and one bad message must not stop an agency's feed.
    """
    consumer = Consumer(consumer_config(bootstrap, group, security))
    consumer.subscribe(list(topics))
    decoded: list[dict[str, Any]] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while max_events is None or len(decoded) < max_events:
            if deadline is not None and time.monotonic() > deadline:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:  # transient: librdkafka retries by itself
                log.warning("kafka error: %s", message.error())
                continue
            try:
                line = describe(to_cloudevent(message), message)
            except Exception as exc:  # the SDK raises several unrelated types for malformed input
                log.warning("skipped %s[%d]@%d: not a CloudEvent (%s)", message.topic(), message.partition(),
                            message.offset(), exc)
            else:
                decoded.append(line)
                on_event(line)
            consumer.store_offsets(message)
    finally:
        consumer.close()  # commits the stored offsets and leaves the group at once
    return decoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print iomki's public events as JSON lines.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--group", default="agency-example", help="this agency's consumer group")
    parser.add_argument("--topic", action="append", dest="topics", choices=PUBLIC_TOPICS,
                        help="a public topic to read (repeatable; default: all of them)")
    parser.add_argument("--max", type=int, default=None, dest="max_events", help="stop after this many events")
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--sasl-username", help="SASL/SCRAM-SHA-512 over TLS with this principal")
    parser.add_argument("--sasl-password")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

    security = None
    if args.sasl_username:
        security = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
                    "sasl.username": args.sasl_username, "sasl.password": args.sasl_password or ""}

    def emit(line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    try:
        decoded = consume(args.bootstrap, args.group, topics=args.topics or PUBLIC_TOPICS,
                          max_events=args.max_events, timeout=args.timeout, on_event=emit, security=security)
    except KeyboardInterrupt:
        return 0
    log.info("decoded %d events", len(decoded))
    # With --max, reaching the count is the success condition (scripts and tests rely on the exit code).
    return 0 if args.max_events is None or len(decoded) >= args.max_events else 1


if __name__ == "__main__":
    sys.exit(main())
