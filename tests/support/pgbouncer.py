"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode in front of the test PostgreSQL, with
SCRAM between client, pooler and server, as the embedded PostgreSQL uses it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from charla.cli.postgres import _service_user
from charla.cli.services import free_port
from tests.support.helpers import eventually

# Two names for the same database: `charla` with a few server connections, `charla_one` with exactly one, so a
# test can make two clients share a server session for certain.
_CONFIG = """[databases]
charla = host={host} port={port} dbname={db} pool_size=4
charla_one = host={host} port={port} dbname={db} pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {root}/userlist.txt
pool_mode = transaction
max_client_conn = 200
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
"""


def _launch(pg_url: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Write the configuration into `root` and start pgbouncer; returns it and its `charla` database's URL."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    server = urlsplit(pg_url)
    user, password = unquote(server.username or ""), unquote(server.password or "")
    root.mkdir(parents=True, exist_ok=True)
    listen = free_port()
    (root / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (root / "pgbouncer.ini").write_text(_CONFIG.format(host=server.hostname, port=server.port, listen=listen,
                                                       db=server.path.lstrip("/"), root=root))
    owner = _service_user()
    if owner:
        shutil.chown(root, owner)
        for item in root.iterdir():
            shutil.chown(item, owner)
    prefix = ["runuser", "-u", owner, "--"] if owner else []
    proc = subprocess.Popen([*prefix, binary, "-q", str(root / "pgbouncer.ini")], stdin=subprocess.DEVNULL)
    return proc, f"postgresql://{server.username}:{server.password}@127.0.0.1:{listen}/charla"


@asynccontextmanager
async def running_pgbouncer(pg_url: str, root: Path) -> AsyncIterator[str]:
    """PgBouncer on a free loopback port in front of `pg_url`; yields the URL of its `charla` database (the
    same user and password). As root it runs as the unprivileged user the embedded PostgreSQL runs as."""
    proc, url = _launch(pg_url, root)

    async def accepting() -> bool:
        assert proc.poll() is None, f"pgbouncer exited; see {root / 'pgbouncer.log'}"
        try:
            async with await psycopg.AsyncConnection.connect(url, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    try:
        await eventually(accepting, 30, "pgbouncer accepting")
        yield url
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
