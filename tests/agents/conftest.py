"""Fixtures shared by the agents' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from charla.core.runtime import Resources, open_resources
from tests.support.helpers import make_settings


@pytest.fixture
async def res(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Resources]:
    """Resources for driving the scheduler directly (its Meta practice template named, in Spanish)."""
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, CHARLA_PRACTICE_TEMPLATE="practice_nudge",
                             CHARLA_PRACTICE_TEMPLATE_LANGUAGE="es")
    async with open_resources(settings, pool_size=4) as opened:
        yield opened
