"""A posts topic freshrank creates is bounded: the real broker (scripts/kafka.sh) deletes what is older than a
day or beyond 1 GiB per partition."""

from __future__ import annotations

import os
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from freshrank.trends.kafka import TOPIC_RETENTION, ensure_topic

BOOTSTRAP = os.environ.get("FRESHRANK_TEST_KAFKA", "127.0.0.1:9092")


@pytest.mark.kafka
def test_created_topics_carry_their_retention() -> None:
    topic = f"freshrank-test-retention-{uuid.uuid4().hex[:8]}"
    assert ensure_topic(topic, BOOTSTRAP)
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = described["topic"][topic]
        assert {name: configs[name]["value"] for name in TOPIC_RETENTION} == TOPIC_RETENTION
        assert {configs[name]["config_source"] for name in TOPIC_RETENTION} == {"DYNAMIC_TOPIC_CONFIG"}
        assert TOPIC_RETENTION == {"retention.ms": "86400000", "retention.bytes": "1073741824"}
    finally:
        admin.delete_topics([topic])
        admin.close()
