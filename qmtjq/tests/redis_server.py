"""The real Redis server the Redis tests use (.ci/run starts one on 127.0.0.1:6379)."""

import pytest


def redis_or_skip(url: str):
    """A client of the Redis server at `url`, or skip the calling test when none answers."""
    import redis

    try:
        connection = redis.from_url(url, socket_connect_timeout=2)
        connection.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis server at {url} ({exc}); .ci/run starts one")
    return connection
