"""A real ``redis-server`` (Debian's package) on a free loopback port, in memory only,
stopped after the test module; tests that need it skip when it is not installed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxbot.testing.servers import RedisServer, redis_server_binary


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    log = Path(tmp_path_factory.mktemp("redis")) / "redis-server.log"
    with RedisServer(log=log) as server:
        yield server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own, so tests sharing one server never see each other."""
    return "test-" + secrets.token_hex(4)
