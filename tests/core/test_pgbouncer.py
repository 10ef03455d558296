"""Charla behind a real PgBouncer in transaction pooling mode (CHARLA_DB_TRANSACTION_POOLER): prepared
statements are what breaks there, migrations hold no session-level lock, and a real turn goes through."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from redis.asyncio import Redis

from charla.core.db import migrate, open_pool
from tests.support.harness import running_stack
from tests.support.payloads import text_webhook
from tests.support.pgbouncer import running_pgbouncer

pytestmark = pytest.mark.skipif(not shutil.which("pgbouncer") and not Path("/usr/sbin/pgbouncer").exists(),
                                reason="needs Debian's pgbouncer (scripts/system-deps.sh test installs it)")
PER_LEARNER = 8


@pytest.fixture(scope="module")
async def bouncer(migrated_pg: str, home: Path) -> AsyncIterator[str]:
    async with running_pgbouncer(migrated_pg, home / "pgbouncer") as url:
        yield url


async def repeat_on_one_server_session(url: str, *, transaction_pooler: bool) -> None:
    """Two pooled clients run the same query often enough to prepare it, on the pooler's one server session."""
    pool = await open_pool(url.rsplit("/", 1)[0] + "/charla_one", min_size=2, max_size=2,
                           transaction_pooler=transaction_pooler)
    try:
        async def client() -> None:
            async with pool.connection() as conn:
                for n in range(8):
                    await conn.execute("SELECT %s::int + 1", (n,))

        await client()
        async with pool.connection() as first, pool.connection() as second:
            for n in range(8):
                for conn in (first, second):
                    await conn.execute("SELECT %s::int + 2", (n,))
    finally:
        await pool.close()


async def test_prepared_statements_collide_behind_the_pooler_unless_told(bouncer: str) -> None:
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        await repeat_on_one_server_session(bouncer, transaction_pooler=False)  # the control: psycopg's default
    await repeat_on_one_server_session(bouncer, transaction_pooler=True)


async def test_migrations_run_through_the_pooler_from_two_migrators_at_once(bouncer: str, migrated_pg: str) -> None:
    assert list(await asyncio.gather(migrate(bouncer), migrate(bouncer))) == [[], []]  # nothing new, no lock left held
    async with await psycopg.AsyncConnection.connect(migrated_pg) as conn:
        locks = await (await conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).fetchone()
    assert locks == (0,)


async def test_real_turns_go_through_one_pooled_server_session(
        bouncer: str, db: str, redis_default: Redis, default_redis_server: str,
        caplog: pytest.LogCaptureFixture) -> None:
    one_session = bouncer.rsplit("/", 1)[0] + "/charla_one"  # every client shares one server session
    async with running_stack(one_session, default_redis_server, CHARLA_DB_TRANSACTION_POOLER="true") as stack:
        for learner in range(3):
            for n in range(PER_LEARNER):
                wa_id = f"3460000100{learner}"
                response = await stack.post(text_webhook(wa_id, f"wamid.PGB{learner}.{n}", f"P{learner} line {n}"))
                assert response.status_code == 200
        await stack.fake.wait_until(lambda: len(stack.fake.echoed()) == 3 * PER_LEARNER, seconds=60)
        for learner in range(3):
            assert stack.fake.echoed(f"3460000100{learner}") == [f"P{learner} line {n}" for n in range(PER_LEARNER)]
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute(
            "SELECT status, count(*) FROM messages WHERE direction = 'in' GROUP BY 1")).fetchall()
    assert rows == [("answered", 3 * PER_LEARNER)]
    # Not one failed delivery on the way (a retried one would hide a collision from the counts above).
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING], "a handler failed"
