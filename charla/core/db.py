"""PostgreSQL: the connection pool every process opens once, and the migration runner."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg_pool import AsyncConnectionPool

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x43484152  # "CHAR"


class MigrationError(RuntimeError):
    """A migration failed or an applied one was edited; the message says which file."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The SQL files in `schema/`, in order (`0001_name.sql`, `0002_…`)."""
    found = []
    for item in resources.files("schema").iterdir():
        if item.name.endswith(".sql"):
            version, _, rest = item.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), item.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                    transaction_pooler: bool = False) -> AsyncConnectionPool:
    """An open pool; raises psycopg.OperationalError when the server is unreachable. Behind a transaction
    pooler (PgBouncer pool_mode=transaction) statements are never prepared: a prepared statement lives in
    one server session, and the pooler hands the next transaction to any session."""
    kwargs: dict[str, object] = {"autocommit": True}
    if transaction_pooler:
        kwargs["prepare_threshold"] = None
    pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, kwargs=kwargs)
    await pool.open(wait=True, timeout=30)
    return pool


async def migrate(url: str, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply pending migrations, each in its own transaction under a transaction-level advisory lock (safe
    through a transaction pooler: nothing outlives a transaction); return the names applied now."""
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
        for migration in migrations():
            if await _apply_once(conn, migration, progress):
                applied_now.append(f"{migration.version}_{migration.name}")
    return applied_now


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise MigrationError(f"schema/{migration.version}_{migration.name}.sql changed after it was applied; "
                             "add a new migration instead of editing an applied one")


async def _apply_once(conn: psycopg.AsyncConnection[tuple[object, ...]], migration: Migration,
                      progress: Callable[[str], None]) -> bool:
    """Apply `migration` unless it is applied already (checked under the lock, so concurrent migrators
    apply it once); False when it was."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            row = await (await conn.execute("SELECT checksum FROM schema_migrations WHERE version = %s",
                                            (migration.version,))).fetchone()
            if row is not None:
                _check_unchanged(migration, str(row[0]))
                return False
            progress(f"applying migration {migration.version}_{migration.name}")
            await conn.execute(migration.sql.encode())
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                               (migration.version, migration.name, migration.checksum))
            return True
    except psycopg.Error as exc:
        raise MigrationError(f"migration {migration.version}_{migration.name} failed: {exc}") from exc
