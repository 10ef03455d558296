"""The embedded PostgreSQL and Redis need credentials (issue 18, finding 5): no password-less or wrong-password
login, the application role is no superuser (no `COPY ... FROM PROGRAM`), Redis answers NOAUTH, the secrets
are 0600, and a cluster an older Charla made without passwords is upgraded in place with its data."""

from __future__ import annotations

import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis

from charla.cli.embedded import running_services
from charla.cli.postgres import APP_ROLE, EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis, redis_server_binary
from charla.cli.services import free_port
from charla.core.db import migrate


@contextmanager
def scratch() -> Iterator[Path]:
    """A directory for one server, removed afterwards. Not pytest's tmp_path: as root, PostgreSQL runs as
    another user, who must reach its directory."""
    root = Path(tempfile.mkdtemp(prefix="charla-services-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    with scratch() as root:
        yield root


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    with scratch() as root:
        server = EmbeddedPostgres(root / "postgres", free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_postgres_refuses_logins_without_the_right_password(pg: EmbeddedPostgres) -> None:
    for user in ("postgres", "charla", APP_ROLE):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://{user}@127.0.0.1:{pg.port}/charla", connect_timeout=5)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"postgresql://{user}:wrong@127.0.0.1:{pg.port}/charla", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password"):  # the private socket asks too
        psycopg.connect(host=str(pg.root / "run"), port=pg.port, user=pg.secrets.superuser, dbname="postgres")


async def test_the_application_role_is_no_superuser_and_cannot_run_programs(pg: EmbeddedPostgres) -> None:
    assert pg.url.startswith(f"postgresql://{APP_ROLE}:")
    await migrate(pg.url)  # migrations run as the application role (pgvector was created by the superuser)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (False, False, False)
        assert conn.execute("SELECT '[1,2]'::vector").fetchone() is not None
        conn.execute("CREATE TEMP TABLE loot (line text)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY loot FROM PROGRAM 'id'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER ROLE current_user SUPERUSER")


def test_secrets_are_private(pg: EmbeddedPostgres) -> None:
    assert mode(pg.secrets_file) == 0o600
    assert mode(pg.root) == 0o700
    assert mode(pg.root / "run") == 0o700, "the socket's directory"
    assert pg.secrets.app_password not in (pg.root / "postgres.log").read_text()


def test_redis_refuses_commands_without_the_password(tmp_root: Path) -> None:
    root = tmp_root / "redis"
    server = EmbeddedRedis(root, free_port(), redis_server_binary())
    server.start()
    try:
        with redis.Redis(port=server.port) as anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.set("k", "v")
        with redis.Redis(port=server.port, password="wrong") as wrong, pytest.raises(redis.AuthenticationError):
            wrong.ping()
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
        assert mode(root / "password") == 0o600
        assert mode(root / "redis.conf") == 0o600
        assert mode(root) == 0o700
        password = server.password
        server.stop()
        again = EmbeddedRedis(root, server.port, redis_server_binary())
        again.start()  # a restart keeps the password (and the URL the stack recorded)
        assert again.url == server.url
        assert again.password == password
        again.stop()
    finally:
        server.stop()


def make_older_cluster(pg: EmbeddedPostgres) -> None:
    """What Charla made before issue 18: trust for everyone, superuser `charla`, data owned by it."""
    pg._prepare_dirs()
    done = pg._run(str(pg.bin_dir / "initdb"), "-D", str(pg.root / "data"), "-U", "charla", "--auth=trust",
                   "--locale=C.UTF-8", "-E", "UTF8")
    assert done.returncode == 0, done.stderr
    options = shlex.join(["-k", str(pg.root / "run"), "-p", str(pg.port), "-c", "listen_addresses=127.0.0.1"])
    ctl = [str(pg.bin_dir / "pg_ctl"), "-D", str(pg.root / "data"), "-l", str(pg.root / "postgres.log"), "-w"]
    assert pg._run(*ctl, "-o", options, "start").returncode == 0
    try:
        with psycopg.connect(f"postgresql://charla@127.0.0.1:{pg.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE charla")
        with psycopg.connect(f"postgresql://charla@127.0.0.1:{pg.port}/charla", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
            conn.execute("INSERT INTO notes (body) VALUES ('kept')")
            conn.execute("CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x'")
    finally:
        pg._run(*ctl, "-m", "fast", "stop")


def test_a_cluster_from_an_older_charla_is_upgraded_in_place(tmp_root: Path) -> None:
    root = tmp_root / "postgres"
    make_older_cluster(EmbeddedPostgres(root, free_port()))
    assert not (root / "secrets.json").exists()
    server = EmbeddedPostgres(root, free_port())
    server.start()
    try:
        assert server.secrets.superuser == "charla"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://charla@127.0.0.1:{server.port}/charla", connect_timeout=5)
        with psycopg.connect(server.url, autocommit=True) as conn:  # the application role owns the old data
            assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
            conn.execute("INSERT INTO notes (body) VALUES ('new')")
            conn.execute("ALTER TABLE notes ADD COLUMN extra text")
            conn.execute("CREATE OR REPLACE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x + x'")
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        with psycopg.connect(server.superuser_url, autocommit=True):
            pass
    finally:
        server.stop()
    server.start()  # a second start of the upgraded cluster changes nothing
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    finally:
        server.stop()


def test_running_services_hand_out_urls_with_credentials(tmp_root: Path) -> None:
    """What `charla up` does when DATABASE_URL and REDIS_URL are unset."""
    with running_services(tmp_root, database_url=None, redis_url=None, pg_port=free_port(),
                          redis_port=free_port()) as urls:
        assert urls.database_url.startswith(f"postgresql://{APP_ROLE}:")
        assert urls.redis_url.startswith("redis://:")
        with psycopg.connect(urls.database_url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)
        with redis.Redis.from_url(urls.redis_url) as client:
            assert client.ping()
