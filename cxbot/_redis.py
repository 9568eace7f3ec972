"""The Redis client of the shared stores (extra ``cxbot[redis]``, imported on first use) and
its failures as :class:`~cxbot.errors.BackendError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from cxbot.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["connect", "redis_errors", "safe_url"]


def connect(url: str) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); nothing is sent yet.

    Raises :class:`~cxbot.errors.ConfigError` when the ``redis`` package is missing.
    """
    try:
        import redis
    except ImportError:
        raise ConfigError(
            "storage.redis_url is set but the redis client is not installed",
            fix="pip install 'cxbot[redis]'",
        ) from None
    client: Redis = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return client


def safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Re-raise a Redis failure (connection refused, timeout, script error) as
    :class:`~cxbot.errors.BackendError` naming ``what``."""
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:
        raise BackendError(f"{what}: {exc}") from exc
