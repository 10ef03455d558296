"""Logging for every process: one root handler writing text or JSON lines, with phone numbers hashed.

Every record that reaches the handler is redacted whatever the format: each run of 7+ digits (an optional
`+` before it) becomes `tel#` and the first 6 hex digits of the SHA-256 of the digits. The hash is unsalted
on purpose, so an operator can find a learner's lines from their number (`charla.core.logs.tag("34600111222")`)
while the number itself is never written."""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from functools import lru_cache
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from charla.core.settings import Settings

HANDLER_NAME = "charla"

# Third-party loggers whose INFO lines carry URLs with phone numbers or message bodies. "twilio" covers the
# SDK's every logger (its async client logs as twilio.async_http_client: 9 INFO lines per send).
NOISY = ("httpx", "httpcore", "aiohttp.access", "twilio", "stripe", "uvicorn.access", "urllib3")

# A run of 7+ digits, except a Redis stream entry id (`<milliseconds>-<seq>`), which operators must be able to
# match against `charla dead list`.
_PHONE = re.compile(r"\+?(\d{7,})(?!\d|-\d)")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


@lru_cache(maxsize=4096)
def tag(digits: str) -> str:
    """The stable stand-in for a phone number: `tel#` + the first 6 hex digits of sha256(digits)."""
    return "tel#" + hashlib.sha256(digits.lstrip("+").encode()).hexdigest()[:6]


def redact(text: str) -> str:
    """`text` with every phone-number-like digit run replaced by its `tag`."""
    return _PHONE.sub(lambda m: tag(m.group(1)), text)


def pseudonym(learner: str) -> str:
    """A learner key fit for logs: `wa:34600111222` → `wa:tel#…`; a key without a number (console
    handle, business-scoped user id) keeps its kind and loses its value to a hash."""
    kind, _, value = learner.rpartition(":")
    if not kind or _PHONE.search(value):
        return redact(learner)
    return f"{kind}:#{hashlib.sha256(value.encode()).hexdigest()[:6]}"


class Redact(logging.Filter):
    """Rewrites each record in place: message with its `%s` args, exception and stack text, and string
    `extra=` fields, all redacted. Records are shared by handlers, so later handlers see the redacted one."""

    _exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(_message(record)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        record.exc_info = None  # formatters would render it again from the live exception
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and not isinstance(value, bool | float | type(None)):
                text = str(value)
                if (clean := redact(text)) != text:
                    setattr(record, key, clean)
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit the format: keep both, still redacted
        return f"{record.msg} {record.args!r}"


def formatter(log_format: str, process: str | None = None) -> logging.Formatter:
    """JSON (time, level, logger, message, process, exc_info, any `extra=` fields) or one text line."""
    if log_format == "json":
        return JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                             rename_fields={"levelname": "level", "name": "logger"},
                             static_fields={"process": process} if process else None)
    prefix = f"[{process}] " if process else ""
    return logging.Formatter(_TEXT_FORMAT.replace("%(name)s", prefix + "%(name)s"))


class _Stderr:
    """sys.stderr as it is at each write: test and CLI runners swap it, and a handler must not keep a
    closed one."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(settings: Settings, *, process: str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Point root logging at one redacting handler (stderr unless `stream`) at CHARLA_LOG_LEVEL in
    CHARLA_LOG_FORMAT, replacing the one a previous call installed; quiet the chatty libraries. `process`
    (the agent's name, or "orchestrator") is added to every line."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler = logging.StreamHandler(stream) if stream else logging.StreamHandler(_Stderr())
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter(settings.log_format, process))
    handler.addFilter(Redact())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
