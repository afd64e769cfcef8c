"""Trend test fixtures: a Redis URL with a unique key prefix (the test fails if Redis is not up)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("FRESHRANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not running at {REDIS_URL} (bash scripts/services.sh up redis): {exc}")
    prefix = f"test:trends:{uuid.uuid4().hex}"
    yield f"{REDIS_URL}?prefix={prefix}"
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
