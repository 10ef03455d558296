"""Embedded PostgreSQL, migrations and the stores, against the real server."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from charla.core.db import MigrationError, migrate, migrations, open_pool
from charla.core.events import Identity
from charla.store import learners


@pytest.fixture
async def pool(db: str) -> AsyncConnectionPool:
    return await open_pool(db, max_size=2)


async def test_pgvector_is_available(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).fetchone()
    assert row == ("0.8.6",)


async def test_migrations_are_recorded_and_idempotent(db: str) -> None:
    assert await migrate(db) == []
    async with await psycopg.AsyncConnection.connect(db) as conn:
        versions = [r[0] for r in await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()]
    assert versions == [m.version for m in migrations()]


async def test_an_edited_applied_migration_is_refused(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001'")
        try:
            with pytest.raises(MigrationError, match=r"0001_foundation\.sql changed"):
                await migrate(db)
        finally:
            await conn.execute("UPDATE schema_migrations SET checksum = %s WHERE version = '0001'",
                               (migrations()[0].checksum,))


async def test_learner_is_found_by_any_identity_and_keeps_both(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        by_phone = await learners.upsert(conn, Identity(wa_id="34600000001", name="Ana"))
        both = await learners.upsert(conn, Identity(wa_id="34600000001", user_id="US.1"))
        by_user = await learners.upsert(conn, Identity(user_id="US.1"))
        other = await learners.upsert(conn, Identity(user_id="US.2"))
        row = await (await conn.execute("SELECT wa_id, wa_user_id, display_name FROM learners WHERE id = %s",
                                        (by_phone,))).fetchone()
    assert by_phone == both == by_user != other
    assert row == ("34600000001", "US.1", "Ana")
    await pool.close()


async def test_memories_exact_per_learner_top_k_returns_k_rows(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        ana = await learners.upsert(conn, Identity(wa_id="1"))
        bob = await learners.upsert(conn, Identity(wa_id="2"))
        for i in range(60):
            vector = "[" + ",".join(str(((i * 7 + j) % 13) / 13) for j in range(384)) + "]"
            await conn.execute("INSERT INTO memories (learner_id, kind, content, embedding) "
                               "VALUES (%s, 'moment', %s, %s::vector)", (ana if i % 2 else bob, f"m{i}", vector))
        query = "[" + ",".join("0.5" for _ in range(384)) + "]"
        rows = await (await conn.execute(
            "SELECT learner_id FROM memories WHERE learner_id = %s ORDER BY embedding <=> %s::vector LIMIT 10",
            (ana, query))).fetchall()
    assert len(rows) == 10
    assert {r[0] for r in rows} == {ana}
    await pool.close()
