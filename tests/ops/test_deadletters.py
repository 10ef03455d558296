"""Dead letters against a real Redis: a real Worker dead-letters an event, which is listed, replayed and then
handled exactly once; drop, unknown ids, replay_all and the `charla dead` commands."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from charla.cli.root import app
from charla.core import constants as c
from charla.core.bus import Bus, BusConfig, Delivery
from charla.core.events import Event, Identity, InboundMessage, ReadReceipt
from charla.core.worker import Worker
from charla.ops import deadletters
from tests.support.harness import running
from tests.support.helpers import entries, eventually

INBOUND, OUTBOX = c.STREAM_INBOUND, c.STREAM_OUTBOX
DEAD = INBOUND + c.DEAD_SUFFIX
runner = CliRunner()


def message(text: str, learner: str = "wa:34600111222") -> InboundMessage:
    return InboundMessage(learner=learner, provider="meta", message_id=f"wamid.{text}",
                          identity=Identity(wa_id=learner.removeprefix("wa:")), kind="text", text=text)


@dataclass
class Flaky:
    """A handler that fails until told to succeed; tests await what it handled instead of sleeping."""

    healthy: bool = False
    handled: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, delivery: Delivery) -> None:
        event = delivery.event()
        assert isinstance(event, InboundMessage)
        if not self.healthy:
            raise RuntimeError(f"the model refused {event.text!r}\nsecond line of the message")
        async with self.changed:
            self.handled.append(event.text or "")
            self.changed.notify_all()

    async def wait_count(self, n: int, seconds: float) -> None:
        async with asyncio.timeout(seconds), self.changed:
            await self.changed.wait_for(lambda: len(self.handled) >= n)


def make_bus(redis: Redis) -> Bus:
    # A long lease: a replay that waited for a missing predecessor would only move on after
    # (max_deliveries + 2) * lease = 20 s, far beyond what the tests wait.
    return Bus(redis, BusConfig(max_deliveries=2, lease_ms=5000))


async def dead_lettered(bus: Bus, event: Event, stream: str = INBOUND, group: str = "conversation") -> str:
    """Publish `event`, take it as a consumer and dead-letter it the way a Worker does; the dead entry's id."""
    await bus.ensure_group(stream, group)
    assert await bus.publish(stream, event)
    [delivery] = await bus.read(stream, group, "c-test", count=1, block_ms=100)
    await bus.dead_letter(delivery, group, uuid.uuid4().hex, error="Traceback (most recent call last):\n"
                          "  ...\nValueError: bad reply", deliveries=3, consumer="c-test")
    [letter] = await deadletters.listing(bus.redis, stream, limit=1)
    return letter.dead_id


async def test_dead_letter_is_listed_replayed_and_handled_exactly_once(redis: Redis) -> None:
    bus = make_bus(redis)
    flaky = Flaky()
    worker = Worker(bus, stream=INBOUND, group="conversation", consumer="c1", handler=flaky, block_ms=100)
    async with running(worker):
        assert await bus.publish(INBOUND, message("hola"), dedupe_key="wamid.hola")
        await eventually(lambda: worker_dead(worker), 15, "the failing event is dead-lettered")

        [letter] = await deadletters.listing(redis)
        assert (letter.stream, letter.group, letter.learner) == (INBOUND, "conversation", "wa:34600111222")
        assert letter.deliveries == 2
        assert "the model refused 'hola'" in letter.error
        assert deadletters.headline(letter.error) == "RuntimeError: the model refused 'hola'"
        assert letter.event_type == "inbound.message"
        assert letter.event["text"] == "hola"
        assert abs(letter.at - time.time()) < 60
        assert await deadletters.find(redis, letter.dead_id) == letter
        assert await deadletters.listing(redis, "outbox") == []

        flaky.healthy = True
        assert await bus.publish(INBOUND, message("later"))  # the learner's next message is not blocked
        await flaky.wait_count(1, 10)
        new_id = await deadletters.replay(bus, letter.dead_id)
        await flaky.wait_count(2, 10)  # well before a waiting entry would be let through (20 s)

    assert flaky.handled == ["later", "hola"]
    assert new_id in [eid.decode() for eid, _ in await entries(redis, INBOUND)]
    assert int((await redis.xpending(INBOUND, "conversation"))["pending"]) == 0  # nothing left to redeliver
    assert await redis.xlen(DEAD) == 0
    with pytest.raises(deadletters.NotFound):
        await deadletters.replay(bus, letter.dead_id)


async def worker_dead(worker: Worker) -> bool:
    return worker.stats.dead_lettered == 1


async def test_a_duplicate_dead_letter_is_published_once(redis_default: Redis) -> None:
    bus = make_bus(redis_default)
    dead_id = await dead_lettered(bus, message("hola"))
    fields: dict[Any, Any] = (await entries(redis_default, DEAD))[0][1]
    await redis_default.xadd(DEAD, fields)  # the same entry dead-lettered twice (crash before completing)
    length = await redis_default.xlen(INBOUND)

    assert await deadletters.replay(bus, dead_id)
    [duplicate] = await deadletters.listing(redis_default)
    with pytest.raises(deadletters.AlreadyReplayed):
        await deadletters.replay(bus, duplicate.dead_id)
    assert await redis_default.xlen(INBOUND) == length + 1
    assert await redis_default.xlen(DEAD) == 0


async def test_replay_all_by_stream_skips_what_cannot_be_replayed(redis_default: Redis) -> None:
    bus = make_bus(redis_default)
    for text in ("uno", "dos"):
        await dead_lettered(bus, message(text))
    await dead_lettered(bus, ReadReceipt(learner="wa:1", provider="meta", message_id="wamid.x"), OUTBOX, "sender")
    await redis_default.xadd(DEAD, {"stream": INBOUND, "group": "conversation", "entry_id": "1-0",
                                    "learner": "wa:1", "seq": 1, "deliveries": 1, "error": "junk",
                                    "event": b"not json"})
    [junk] = await deadletters.listing(redis_default, limit=1)
    assert junk.event == {"_raw": "not json"}
    with pytest.raises(deadletters.NotReplayable):
        await deadletters.replay(bus, junk.dead_id)

    assert await deadletters.replay_all(bus, "inbound") == 2
    assert [letter.dead_id for letter in await deadletters.listing(redis_default, INBOUND)] == [junk.dead_id]
    assert await redis_default.xlen(OUTBOX + c.DEAD_SUFFIX) == 1
    replayed = [json.loads(f[b"e"])["text"] for _, f in (await entries(redis_default, INBOUND))[-2:]]
    assert replayed == ["uno", "dos"]  # oldest first


async def test_drop_and_unknown_ids(redis_default: Redis) -> None:
    bus = make_bus(redis_default)
    dead_id = await dead_lettered(bus, message("hola"))
    assert await deadletters.find(redis_default, "1-0") is None
    assert await deadletters.find(redis_default, "not-an-id") is None
    assert await deadletters.drop(redis_default, dead_id)
    assert not await deadletters.drop(redis_default, dead_id)
    assert await deadletters.find(redis_default, dead_id) is None
    with pytest.raises(deadletters.UnknownStream):
        await deadletters.listing(redis_default, "nowhere")


def test_listing_helpers() -> None:
    assert deadletters.short_learner("wa:34600111222").startswith("wa:")
    assert "34600" not in deadletters.short_learner("wa:34600111222")
    assert deadletters.headline("Traceback (most recent call last):\n  File x\nValueError: bad") == "ValueError: bad"
    assert deadletters.headline("boom\ndetails") == "boom"
    chained = ("Traceback (most recent call last):\n  File a\nKeyError: 'x'\n\nDuring handling of the above...\n\n"
               "Traceback (most recent call last):\n  File b\n    ^^^\nRuntimeError: refused\nsecond line")
    assert deadletters.headline(chained) == "RuntimeError: refused"
    assert [deadletters.age(s) for s in (5, 120, 7200, 200_000)] == ["5s", "2m", "2h", "2d"]


async def test_cli_lists_shows_replays_and_drops(default_redis_server: str, redis_default: Redis,
                                               tmp_path: Path) -> None:
    bus = make_bus(redis_default)
    first = await dead_lettered(bus, message("hola"))
    second = await dead_lettered(bus, message("adiós"))
    env = {"REDIS_URL": default_redis_server, "DATABASE_URL": "", "CHARLA_HOME": str(tmp_path)}

    async def dead(*args: str) -> tuple[int, str]:
        result = await asyncio.to_thread(runner.invoke, app, ["dead", *args], env=env)
        return result.exit_code, result.output

    code, out = await dead("list")
    assert code == 0
    assert first in out
    assert "inbound" in out
    assert "ValueError: bad reply" in out
    assert "34600111222" not in out
    code, out = await dead("list", "--stream", "outbox", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out = await dead("list", "--json")
    assert [row["dead_id"] for row in json.loads(out)] == [second, first]
    code, out = await dead("list", "--stream", "nowhere")
    assert code == 1
    assert "unknown stream" in out

    code, out = await dead("show", first)
    assert code == 0
    assert '"text": "hola"' in out
    assert "Traceback" in out
    for command in (["show", "1-0"], ["replay", "1-0"], ["drop", "1-0"]):
        code, out = await dead(*command)
        assert code == 1
        assert "charla dead list" in out
    code, out = await dead("replay")
    assert code == 1
    assert "--all" in out

    code, out = await dead("replay", first)
    assert code == 0
    assert f"replayed {first} as " in out
    code, out = await dead("drop", second)
    assert (code, out.strip().splitlines()[-1]) == (0, f"dropped {second}")
    assert await redis_default.xlen(DEAD) == 0
    await dead_lettered(bus, message("tres"))
    code, out = await dead("replay", "--all", "--stream", "inbound")
    assert code == 0
    assert "replayed 1 dead letter(s)" in out


@pytest.mark.parametrize("command", [["dead"], ["dead", "list"], ["dead", "show"], ["dead", "replay"],
                                     ["dead", "drop"]])
def test_dead_commands_have_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
