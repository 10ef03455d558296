"""What the embedded servers share: their errors, free ports, private files and generated passwords."""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str], None]


class ServiceError(RuntimeError):
    """An embedded service could not be prepared or started; the message says what to do."""


def quiet(_: str) -> None:
    """The default progress: say nothing."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def free_port() -> int:
    """An ephemeral TCP port nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



def package_dir(name: str, hint: str) -> Path:
    """Where the installed package `name` lives (ServiceError with `hint` when it is missing)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"{name} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def new_password() -> str:
    """A fresh random password."""
    return secrets.token_urlsafe(32)  # URL-safe: goes into DATABASE_URL / REDIS_URL as it is


def write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only (0600 from the start: never briefly world-readable)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.unlink(missing_ok=True)
    with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    temp.replace(path)

