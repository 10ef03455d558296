"""The `charla` command line: help everywhere, clear errors, status and migrate against real services."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from redis.asyncio import Redis
from typer.testing import CliRunner

from charla.cli.root import app
from charla.core import constants as c
from tests.core.test_settings import PRODUCTION
from tests.support.helpers import eventually

runner = CliRunner()


def _commands(group: Any, path: list[str]) -> list[list[str]]:
    """Every command path of the CLI, sub-apps included (walked from the click tree, so none is forgotten)."""
    found = [path]
    for name, command in sorted(getattr(group, "commands", {}).items()):
        found += _commands(command, [*path, name])
    return found


COMMANDS = _commands(typer.main.get_command(app), [])


def test_the_walk_finds_every_command() -> None:
    assert {"up", "dead", "broadcast", "alive", "say"} <= {c[0] for c in COMMANDS if c}
    assert ["dead", "replay"] in COMMANDS
    assert ["voice", "prepare"] in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "charla")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_unknown_agent_names_the_real_ones() -> None:
    result = runner.invoke(app, ["agent", "listener"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 1
    assert "unknown agent" in result.output
    assert "voice" in result.output


def test_production_refusal_names_what_is_missing_and_hides_values() -> None:
    env = {**dict.fromkeys(PRODUCTION, ""), **PRODUCTION, "STRIPE_SECRET_KEY": "changeme"}
    result = runner.invoke(app, ["migrate"], env=env)
    assert result.exit_code == 2
    assert "STRIPE_SECRET_KEY" in result.output
    assert "sk_live" not in result.output
    assert "gsk_x" not in result.output


def test_commands_without_a_stack_say_how_to_start_one(tmp_path: object) -> None:
    env = {"DATABASE_URL": "", "REDIS_URL": "", "CHARLA_HOME": str(tmp_path)}
    for command in (["status"], ["restart", "conversation"], ["migrate"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 1
        assert "charla up" in result.output


def test_migrate_and_status_against_real_services(db: str, default_redis_server: str) -> None:
    import redis

    redis.Redis.from_url(default_redis_server).flushdb()  # what earlier stacks left (an LLM chain, heartbeats)
    env = {"DATABASE_URL": db, "REDIS_URL": default_redis_server}
    migrated = runner.invoke(app, ["migrate"], env=env)
    assert migrated.exit_code == 0
    assert "up to date" in migrated.output
    status = runner.invoke(app, ["status"], env=env)
    assert status.exit_code == 0
    assert "inbound" in status.output
    assert "outbox" in status.output
    assert "ALERTS" not in status.output
    assert "no conversation agent has started yet" in status.output
    restart = runner.invoke(app, ["restart", "conversation"], env=env)
    assert restart.exit_code == 1
    assert "no running `charla up`" in restart.output


def test_registry_matches_the_declared_consumer_groups() -> None:
    from agents.registry import AGENTS
    from charla.core import constants as c

    declared = {(stream, group) for stream, groups in c.CONSUMER_GROUPS.items() for group in groups}
    assert declared == {(consumes.stream, spec.name) for spec in AGENTS.values() for consumes in spec.consumes}


async def test_status_shows_and_clears_operator_alerts(db: str, default_redis_server: str,
                                                      redis_default: Redis) -> None:
    await redis_default.hset(c.ALERTS_KEY, "190", json.dumps({"message": "token rejected", "at": time.time()}))
    env = {"DATABASE_URL": db, "REDIS_URL": default_redis_server}
    shown = await asyncio.to_thread(runner.invoke, app, ["status"], env=env)
    assert "code 190: token rejected" in shown.output
    await asyncio.to_thread(runner.invoke, app, ["status", "--clear-alerts"], env=env)
    assert await redis_default.exists(c.ALERTS_KEY) == 0


def test_status_labels_the_demo_model() -> None:
    from charla.ops.status import render

    report = {"provider": "console", "processes": {}, "heartbeats": [], "streams": [], "alerts": {},
              "llm": {"providers": {"local": {"model": "SmolLM2-135M-Instruct.Q4_1", "demo": True}},
                      "circuits": {}, "share_24h": {"local": {"turns": 3, "share": 1.0, "cost_usd": 0.0}}}}
    shown = render(report, now=0.0)
    assert "SmolLM2-135M-Instruct.Q4_1  (DEMO MODEL: cannot tutor)" in shown
    assert "Offline mode: each reply is the built-in checker's corrections" in shown  # what it can do
    assert "It cannot hold a real conversation" in shown
    assert "GROQ_API_KEY" in shown


def test_restart_of_an_unknown_process_is_an_error_naming_the_real_ones() -> None:
    result = runner.invoke(app, ["restart", "sendr"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 2
    assert "unknown process 'sendr'" in result.output
    for name in ("orchestrator", "conversation", "sender", "voice"):
        assert name in result.output
    assert "requested" not in result.output


async def test_restart_says_when_no_new_heartbeat_comes(db: str, default_redis_server: str,
                                                        redis_default: Redis) -> None:
    """A supervisor that hears the request but never brings a new process up (simulated: a bare subscriber, and
    the old process's heartbeat, which must not count)."""
    old = {"agent": "sender", "consumer": "sender-1", "pid": 1, "host": "here", "at": time.time()}
    await redis_default.set(c.HEARTBEAT_KEY.format(agent="sender", consumer="sender-1"), json.dumps(old))
    pubsub = redis_default.pubsub()
    await pubsub.subscribe(c.CONTROL_CHANNEL)
    env = {"DATABASE_URL": db, "REDIS_URL": default_redis_server}
    try:
        waited = await asyncio.to_thread(runner.invoke, app, ["restart", "sender", "--timeout", "0.5"], env=env)
        assert waited.exit_code == 1
        assert "waiting up to 0.5s for a heartbeat from a new sender process" in waited.output
        assert "no heartbeat from a new sender process within 0.5s" in waited.output
        asked = await asyncio.to_thread(runner.invoke, app, ["restart", "sender", "--no-wait"], env=env)
        assert asked.exit_code == 0
        assert "waiting" not in asked.output
        heard: list[bytes] = []
        async with asyncio.timeout(10):
            async for message in pubsub.listen():
                heard += [message["data"]] if message["type"] == "message" else []
                if len(heard) == 2:
                    break
        assert heard == [b"restart sender"] * 2
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_restart_waits_for_the_new_process_of_a_supervised_stack(
        db: str, default_redis_server: str, redis_default: Redis, home: Path) -> None:
    from charla.cli.services import free_port
    from charla.core.liveness import beats
    from tests.support.stack import Proc, stack_env

    env = stack_env(db=db, redis_url=default_redis_server, graph_url="http://127.0.0.1:9", port=free_port(),
                    home=str(home))
    stack = Proc(["up", "--agents", "sender"], env)
    await stack.start()

    async def pids() -> set[int | None]:
        return {beat.pid for beat in await beats(redis_default, "sender", time.time())}

    try:
        await eventually(pids, 60, "the sender's first heartbeat")
        before = await pids()
        restart = await asyncio.create_subprocess_exec(sys.executable, "-m", "charla", "restart", "sender", env=env,
                                                       stderr=asyncio.subprocess.PIPE)
        said = (await restart.communicate())[1].decode()
        assert restart.returncode == 0, said
        assert "waiting up to 60s for a heartbeat from a new sender process" in said
        back = re.search(r"sender is back: pid (\d+)", said)
        assert back is not None, said
        assert int(back[1]) not in before
        assert json.loads((await redis_default.hget(c.PROCS_KEY, "sender")) or "{}")["pid"] == int(back[1])
        missing = await asyncio.to_thread(runner.invoke, app, ["restart", "memory"], env=env)
        assert missing.exit_code == 1
        assert "memory is not run by this `charla up` (it runs: orchestrator, sender)" in missing.output
    finally:
        assert await stack.stop() == 0
