"""Erasure (issue 18): the erased-quota identity is an HMAC under the server secret, and erasing a learner
(their own "delete my data" or the dashboard's delete, one shared path) purges their bus stream entries and
dead letters, so a replay cannot bring them back. Also the server secret's settings and generated file."""

from __future__ import annotations

import hashlib
import hmac
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from agents import erasure
from charla.core import constants as c
from charla.core import keys
from charla.core.bus import Bus, Delivery
from charla.core.events import Identity, InboundMessage
from charla.ops import deadletters, export
from tests.agents.test_conversation import bodies, rows, say
from tests.core.test_settings import PRODUCTION
from tests.support.harness import Stack, running_stack
from tests.support.helpers import entries, eventually, make_settings

WA = "34600000001"
KEY = "k" * 16 + "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, FREE_MESSAGES="1", CHARLA_SECRET_KEY=KEY) as running:
        yield running


async def everything_in_redis_streams(redis: Redis) -> list[bytes]:
    """Every entry of every bus stream and dead-letter stream, as raw bytes (what a replay could use)."""
    found: list[bytes] = []
    for stream in c.CONSUMER_GROUPS:
        for name in (stream, stream + c.DEAD_SUFFIX):
            found += [b" ".join([*fields.keys(), *fields.values()]) for _, fields in await entries(redis, name)]
    return found


async def dead_letter_of(stack: Stack, text: str) -> None:
    """A poison inbound event of the learner set aside in the dead-letter stream, as the bus does it."""
    event = InboundMessage(learner=f"wa:{WA}", provider="meta", message_id=f"wamid.dead{uuid.uuid4().hex[:6]}",
                           identity=Identity(wa_id=WA, name="Ana"), kind="text", text=text)
    delivery = Delivery(stream=c.STREAM_INBOUND, entry_id="1-1", learner=event.learner, seq=0,
                        payload=event.model_dump_json().encode())
    await stack.res.bus.dead_letter(delivery, "conversation", "token", error="boom", deliveries=5, consumer="t")


async def test_the_erased_quota_identity_is_an_hmac_and_still_blocks_a_second_free_quota(stack: Stack,
                                                                                        db: str) -> None:
    for n, text in enumerate(["uno", "delete my data", "yes", "¿Hola otra vez?"]):
        await say(stack, text)
        await stack.fake.wait_for(n + 1, seconds=10)
    assert bodies(stack)[2].startswith("Done: I deleted")
    assert bodies(stack)[3].startswith("You've used your 1 free messages")
    kept = {str(row[0]) for row in await rows(db, "SELECT identity_hash FROM erased_quota")}
    expected = hmac.new(KEY.encode(), f"charla-quota:wa_id:{WA}".encode(), hashlib.sha256).hexdigest()
    assert expected in kept
    assert hashlib.sha256(f"charla-quota:wa_id:{WA}".encode()).hexdigest() not in kept  # not enumerable


async def test_delete_my_data_purges_stream_entries_and_dead_letters(stack: Stack, db: str,
                                                                     redis_default: Redis) -> None:
    await say(stack, "Hola, me llamo Ana")
    await stack.fake.wait_for(1, seconds=10)
    (row,) = await rows(db, "SELECT id FROM learners")
    erased_id = str(row[0])
    await dead_letter_of(stack, "Soy Ana, vivo en Madrid")
    await say(stack, "delete my data")
    await stack.fake.wait_for(2, seconds=10)
    await say(stack, "yes")
    await stack.fake.wait_for(3, seconds=10)
    traces = (b"Hola, me llamo Ana", b"Soy Ana", b"delete my data", erased_id.encode())

    async def purged() -> bool:  # the purge runs right after the confirmation was handed to the outbox
        left = b"\n".join(await everything_in_redis_streams(redis_default))
        return not any(trace in left for trace in traces)

    await eventually(purged, 10, "no entry or dead letter mentions the erased learner")
    assert await deadletters.replay_all(stack.res.bus) == 0
    await say(stack, "¿Sigues ahí?")  # the same number afterwards: a new learner, answered (nothing waits)
    await stack.fake.wait_for(4, seconds=10)


async def test_the_dashboard_erasure_leaves_nothing_a_replay_could_resurrect(stack: Stack, db: str,
                                                                            redis_default: Redis) -> None:
    await say(stack, "Hola, me llamo Ana")
    await stack.fake.wait_for(1, seconds=10)
    (row,) = await rows(db, "SELECT id FROM learners")
    await dead_letter_of(stack, "Soy Ana, vivo en Madrid")
    assert any(WA.encode() in entry for entry in await everything_in_redis_streams(redis_default))
    assert await erasure.erase_learner(stack.res, uuid.UUID(str(row[0])))  # what the dashboard's delete calls
    assert not any(WA.encode() in entry for entry in await everything_in_redis_streams(redis_default))
    assert await deadletters.replay_all(stack.res.bus) == 0
    assert await rows(db, "SELECT count(*) FROM learners") == [(0,)]
    assert not await erasure.erase_learner(stack.res, uuid.UUID(str(row[0])))  # already gone


async def test_an_unprocessed_entry_purged_leaves_later_ones_of_the_key_unblocked(redis_default: Redis) -> None:
    stream, group = "charla:stream:erasure-test", "erasure"
    probe = Bus(redis_default, groups={stream: (group,)})
    event = InboundMessage(learner="wa:1", provider="meta", message_id="m1", identity=Identity(wa_id="1"), kind="text")
    await probe.publish(stream, event)
    await probe.publish(stream, event.model_copy(update={"learner": "wa:2"}))
    assert await probe.purge(stream, {"wa:1"}) == 1
    assert await redis_default.hget(c.DONE_KEY.format(stream=stream, group=group), "wa:1") == b"1"
    later = await probe.publish(stream, event)
    assert [entry_id.decode() for entry_id, _ in await entries(redis_default, stream)][-1] == later
    (delivery,) = [d for d in await probe.read(stream, group, "c", count=10, block_ms=10) if d.learner == "wa:1"]
    assert await probe.begin(delivery, group, "tok") == "run"  # not waiting for the purged seq 1


def test_production_needs_a_long_secret_key_and_refuses_placeholders() -> None:
    with pytest.raises(ValidationError, match="CHARLA_SECRET_KEY"):
        make_settings(**{name: value for name, value in PRODUCTION.items() if name != "CHARLA_SECRET_KEY"})
    for bad in ("changeme", "short-but-real-0123"):
        with pytest.raises(ValidationError, match="CHARLA_SECRET_KEY"):
            make_settings(**{**PRODUCTION, "CHARLA_SECRET_KEY": bad})
    settings = make_settings(**{**PRODUCTION, "CHARLA_SECRET_KEY": KEY})
    assert keys.server_key(settings) == KEY.encode()


def test_outside_production_a_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = make_settings(CHARLA_HOME=str(tmp_path))
    first = keys.server_key(settings)
    path = tmp_path / keys.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    keys._generated.cache_clear()  # a new process of the same home
    assert keys.server_key(make_settings(CHARLA_HOME=str(tmp_path))) == first
    assert keys.server_key(make_settings(CHARLA_HOME=str(tmp_path / "other"))) != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "secret_key"]  # no temporary file left


async def test_erasure_deletes_the_learners_kept_data_exports(stack: Stack, db: str, redis_default: Redis) -> None:
    await say(stack, "Hola, me llamo Ana")
    await stack.fake.wait_for(1, seconds=10)
    (row,) = await rows(db, "SELECT id FROM learners")
    learner_id = uuid.UUID(str(row[0]))
    token = await export.stash(stack.res.pool, stack.res.redis, learner_id, 3600)
    assert await redis_default.exists(c.MEDIA_KEY.format(token=f"doc:{token}"))
    assert await erasure.erase_learner(stack.res, learner_id)
    assert not await redis_default.exists(c.MEDIA_KEY.format(token=f"doc:{token}"))  # not fetchable any more
    assert not await redis_default.exists(c.EXPORTS_KEY.format(learner_id=learner_id))
