"""The relay places each key on the partition Kafka's default partitioner would: any producer agrees."""

from __future__ import annotations

import random
import uuid

import pytest
from aiokafka.partitioner import murmur2

from shared.messaging.relay import _key_hash, _murmur2

pytestmark = pytest.mark.unit


def test_the_relay_s_murmur2_is_kafka_s_for_keys_of_every_length():
    rnd = random.Random(7)
    keys = [bytes(rnd.getrandbits(8) for _ in range(length)) for length in range(0, 130) for _ in range(20)]
    keys += [str(uuid.UUID(int=rnd.getrandbits(128))).encode() for _ in range(1000)]  # plants' keys, as sent
    keys += [b"\xff" * 37, b"\x80" * 6, b"\x00" * 9]  # bytes Java reads as negative, and zeros
    assert [_murmur2(key) for key in keys] == [murmur2(key) for key in keys]


def test_a_key_s_hash_is_positive_as_the_default_partitioner_makes_it():
    key = b"\xff" * 37
    assert murmur2(key) > 0x7FFFFFFF  # the case in point: the high bit set
    assert _key_hash(key) == murmur2(key) & 0x7FFFFFFF
