"""The server secret (CHARLA_SECRET_KEY): keys what Charla must remember without being able to read back,
such as the identities of erased learners (an HMAC of a phone number cannot be reversed by trying every
number without the key).

Production must set it (settings refuse to start otherwise). Elsewhere, when unset, a random key is
generated once into CHARLA_HOME/secret_key (mode 0600) and reused by every process of that home.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path

from charla.core.production import MIN_SECRET_BYTES
from charla.core.settings import Settings

FILE_NAME = "secret_key"


class MissingSecretKey(RuntimeError):
    """Production without CHARLA_SECRET_KEY (settings validation normally stops this earlier)."""


def server_key(settings: Settings) -> bytes:
    """CHARLA_SECRET_KEY, or (outside production) the key generated under CHARLA_HOME."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        return settings.secret_key.get_secret_value().strip().encode()
    if settings.env == "production":
        raise MissingSecretKey("CHARLA_SECRET_KEY is required in production")
    return _generated(settings.home / FILE_NAME)


def keyed_hash(key: bytes, text: str) -> str:
    """HMAC-SHA256 of `text` under `key`, hex."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@cache
def _generated(path: Path) -> bytes:
    """The key in `path`, created (0600) the first time. Concurrent first starts agree: the key is written
    to a private temporary file and linked into place, and whoever links second reads the winner's."""
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise MissingSecretKey(f"{path} holds no usable key (delete it to generate a new one)")
    return key.encode()
