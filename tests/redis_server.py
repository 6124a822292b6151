"""A real ``redis-server`` for tests: a test module's fixture ``yield from start_redis()``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from demo_server.redis_local import RedisServer, RedisUnavailable


def start_redis() -> Iterator[RedisServer]:
    """Yield a running Redis; skip (fail on CI) where redis-server is not installed."""
    try:
        server = RedisServer().start()
    except RedisUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run must install Debian's redis-server")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()

