"""Dead letters: list, show, replay and drop the poison events the bus set aside in `<stream>:dead`.

A replay publishes the original event again through `Bus.publish`, so it gets the learner's next sequence
number: the learner's done-sequence already moved past the dead entry (dead-lettering completes it), so the
replay neither waits for a predecessor that will never come nor counts as done. The publish dedupe key of the
original event is not reused (that would swallow the replay); the replay's own key is derived from the
original entry, so replaying twice (a duplicate dead entry, or a retry after a crash between publish and
delete) publishes the event once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from rich.table import Table

from charla.core import constants as c
from charla.core.bus import Bus
from charla.core.errors import CharlaError
from charla.core.events import Event, decode_event

log = logging.getLogger(__name__)

STREAMS = tuple(c.CONSUMER_GROUPS)
_STREAM_PREFIX = f"{c.PREFIX}:stream:"
_ENTRY_ID = re.compile(r"\d+-\d+")
_PAGE = 100


class DeadLetterError(CharlaError):
    """Base of dead-letter failures."""


class NotFound(DeadLetterError):
    """No dead letter has this id (never existed, replayed or dropped already)."""


class NotReplayable(DeadLetterError):
    """The dead letter cannot go back on its stream as it is (undecodable event, shared stream)."""


class AlreadyReplayed(DeadLetterError):
    """This entry's event was replayed before (the leftover dead entry has now been removed)."""


class UnknownStream(DeadLetterError, ValueError):
    """Not one of the bus streams (constants.CONSUMER_GROUPS)."""


@dataclass(frozen=True)
class DeadLetter:
    """One entry of a dead-letter stream, decoded."""

    stream: str  # the source stream
    dead_id: str  # entry id in `<stream>:dead`
    group: str
    learner: str
    deliveries: int
    error: str
    event_type: str
    at: float  # unix seconds, from dead_id
    event: dict[str, Any]  # the original payload; {"_raw": text} when it was not a JSON object
    entry_id: str = ""  # the original entry id on the source stream
    consumer: str = ""
    seq: int = 0


def stream_name(name: str) -> str:
    """'inbound' or 'charla:stream:inbound' → the stream's full name; raises UnknownStream."""
    full = name if name.startswith(_STREAM_PREFIX) else _STREAM_PREFIX + name
    if full not in STREAMS:
        known = ", ".join(s.removeprefix(_STREAM_PREFIX) for s in STREAMS)
        raise UnknownStream(f"unknown stream {name!r}; streams: {known}")
    return full


async def listing(redis: Redis, stream: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """The newest `limit` dead letters of `stream` (every bus stream when None), newest first."""
    letters: list[DeadLetter] = []
    for source in _sources(stream):
        rows: Any = await redis.xrevrange(source + c.DEAD_SUFFIX, count=limit)
        letters += [_letter(source, eid, fields) for eid, fields in rows]
    letters.sort(key=lambda letter: _id_key(letter.dead_id), reverse=True)
    return letters[:limit]


async def find(redis: Redis, dead_id: str) -> DeadLetter | None:
    """The dead letter with this id, whichever stream it is on; None when there is none."""
    if not _ENTRY_ID.fullmatch(dead_id):
        return None
    for source in STREAMS:
        rows: Any = await redis.xrange(source + c.DEAD_SUFFIX, dead_id, dead_id, count=1)
        if rows:
            return _letter(source, *rows[0])
    return None


async def replay(bus: Bus, dead_id: str) -> str:
    """Publish the dead letter's event again on its stream, delete the dead entry, return the new entry id.

    Raises NotFound, NotReplayable (left in place) or AlreadyReplayed (the dead entry is removed).
    """
    letter = await find(bus.redis, dead_id)
    if letter is None:
        raise NotFound(f"no dead letter {dead_id}")
    entry = await bus.publish(letter.stream, _replayable(bus, letter), dedupe_key=_replay_key(letter))
    await bus.redis.xdel(letter.stream + c.DEAD_SUFFIX, dead_id)
    if entry is None:
        raise AlreadyReplayed(f"{dead_id}: entry {letter.entry_id} of {letter.stream} was replayed before")
    log.info("replayed dead letter %s of %s as %s", dead_id, letter.stream, entry)
    return entry


async def drop(redis: Redis, dead_id: str) -> bool:
    """Delete a dead letter for good; False when there was none with this id."""
    if not _ENTRY_ID.fullmatch(dead_id):
        return False
    for source in STREAMS:
        if await redis.xdel(source + c.DEAD_SUFFIX, dead_id):
            return True
    return False


async def purge(redis: Redis, learners: Container[str]) -> int:
    """Delete every dead letter of `learners` on every dead-letter stream (erasure: a replay must never
    bring an erased learner back); returns how many."""
    purged = 0
    for source in STREAMS:
        dead_stream, start = source + c.DEAD_SUFFIX, "-"
        while True:
            rows: Any = await redis.xrange(dead_stream, start, "+", count=_PAGE)
            doomed = [_text(eid) for eid, fields in rows if _text(_field(fields, "learner") or b"") in learners]
            if doomed:
                purged += int(await redis.xdel(dead_stream, *doomed))
            if len(rows) < _PAGE:
                break
            start = f"({_text(rows[-1][0])}"
    return purged


async def replay_all(bus: Bus, stream: str | None = None) -> int:
    """Replay every dead letter of `stream` (all streams when None), oldest first; returns how many went back.

    Dead letters that cannot be replayed are logged and left in place. Only the entries present at the start
    are replayed: an event that fails again is dead-lettered anew and waits for the next replay.
    """
    replayed = 0
    for source in _sources(stream):
        for dead_id in await _snapshot(bus.redis, source + c.DEAD_SUFFIX):
            try:
                await replay(bus, dead_id)
            except DeadLetterError as exc:
                log.warning("dead letter %s not replayed: %s", dead_id, exc)
                continue
            replayed += 1
    return replayed


def short_learner(learner: str) -> str:
    """A learner key fit for a shared screen: its kind and a short hash (`wa:34600…` → `wa:5e3f1c2a`)."""
    kind, colon, _ = learner.partition(":")
    digest = hashlib.sha256(learner.encode()).hexdigest()[:8]
    return f"{kind}:{digest}" if colon else digest


def table(letters: list[DeadLetter], now: float) -> Table:
    """`charla dead list`: id, stream, age, learner (hashed), deliveries, the error's last line."""
    rows = [(letter.dead_id, letter.stream.removeprefix(_STREAM_PREFIX), age(now - letter.at),
             short_learner(letter.learner), str(letter.deliveries), letter.event_type, headline(letter.error))
            for letter in letters]
    view = Table(box=None, pad_edge=False)
    for i, name in enumerate(("ID", "STREAM", "AGE", "LEARNER", "DELIV", "TYPE")):  # never squeezed
        view.add_column(name, no_wrap=True, min_width=max([len(name), *(len(row[i]) for row in rows)]))
    view.add_column("ERROR", no_wrap=True, overflow="ellipsis", min_width=10)
    for row in rows:
        view.add_row(*row)
    return view


def headline(error: str) -> str:
    """The line of an error that says what went wrong: the exception line of a (last) traceback, else the first."""
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    after = lines[tracebacks[-1] + 1:] if tracebacks else lines
    return next((line for line in after if not line[0].isspace()), lines[0] if lines else "")


def age(seconds: float) -> str:
    """12s, 5m, 3h, 2d."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def _sources(stream: str | None) -> tuple[str, ...]:
    return STREAMS if stream is None else (stream_name(stream),)


async def _snapshot(redis: Redis, dead_stream: str) -> list[str]:
    """Ids of the dead entries present now, oldest first, read page by page."""
    ids: list[str] = []
    start = "-"
    while True:
        rows: Any = await redis.xrange(dead_stream, start, "+", count=_PAGE)
        ids += [_text(eid) for eid, _ in rows]
        if len(rows) < _PAGE:
            return ids
        start = f"({ids[-1]}"


def _replayable(bus: Bus, letter: DeadLetter) -> Event:
    others = [g for g in bus.groups.get(letter.stream, ()) if g != letter.group]
    if others:  # a replay reaches every group of the stream: those groups would handle it twice
        raise NotReplayable(f"{letter.dead_id}: {letter.stream} is also consumed by {', '.join(others)}")
    try:
        return decode_event(json.dumps(letter.event))
    except ValidationError as exc:
        raise NotReplayable(f"{letter.dead_id}: the event does not decode ({exc.error_count()} errors); "
                            "drop it once understood") from exc


def _replay_key(letter: DeadLetter) -> str:
    return f"replay:{letter.stream}:{letter.group}:{letter.entry_id or letter.dead_id}"


def _letter(source: str, entry_id: bytes | str, fields: dict[Any, Any]) -> DeadLetter:
    dead_id = _text(entry_id)
    raw = _text(_field(fields, "event") or b"")
    event = _json_object(raw)
    return DeadLetter(stream=_text(_field(fields, "stream") or source), dead_id=dead_id,
                      group=_text(_field(fields, "group") or b""), learner=_text(_field(fields, "learner") or b""),
                      deliveries=_int(_field(fields, "deliveries")), error=_text(_field(fields, "error") or b""),
                      event_type=str(event.get("type", "?")), at=_id_key(dead_id)[0] / 1000, event=event,
                      entry_id=_text(_field(fields, "entry_id") or b""),
                      consumer=_text(_field(fields, "consumer") or b""), seq=_int(_field(fields, "seq")))


def _json_object(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


def _field(fields: dict[Any, Any], name: str) -> Any:
    return fields.get(name.encode(), fields.get(name))


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _int(value: bytes | str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
