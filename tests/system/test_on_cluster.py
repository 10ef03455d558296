"""The whole application on Redis Cluster (CHARLA_REDIS_CLUSTER=true): the in-process stack against the local
3 primaries + 3 replicas (tests.support.redis_cluster, started once per session), driven as in production:
a signed Meta webhook answered end to end, a number change moving the learner's session, the dashboard
login lockout, `charla alive` and `charla status` (CLI), GET /metrics and the dashboard's overview. Each
reads or writes keys that hash to different slots: a command over several of them fails with CROSSSLOT."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from typer.testing import CliRunner

from charla.cli.root import app
from charla.core import constants as c
from charla.core.redis_client import is_cluster
from charla.core.runtime import heartbeat
from charla.store import session
from tests.core.test_metrics import scraped
from tests.orchestrator.test_dashboard_security import log_in
from tests.support import lifecycle_payloads as p
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.payloads import text_webhook
from tests.support.redis_cluster import LocalCluster, cluster_binaries

pytestmark = pytest.mark.skipif(cluster_binaries() is None, reason="needs redis-server and redis-cli (Debian)")

OLD, NEW = "16505551234", "12195555358"
ADMIN = "admin-token-for-the-cluster-tests-0123456789abcdef"
REPLICAS = ("conversation-a", "conversation-b", "conversation-c")
runner = CliRunner()


@pytest.fixture
async def stack(db: str, redis_cluster: LocalCluster) -> AsyncIterator[Stack]:
    emptied = RedisCluster.from_url(redis_cluster.url)
    await emptied.flushdb(target_nodes=RedisCluster.PRIMARIES)
    await emptied.aclose()
    async with running_stack(db, redis_cluster.url, CHARLA_REDIS_CLUSTER="true", CHARLA_HEARTBEAT_S="0.2",
                             CHARLA_ADMIN_TOKEN=ADMIN, CHARLA_LLM_MAX_RETRIES="0") as up:
        assert is_cluster(up.res.redis)
        yield up


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def sent_to(stack: Stack, to: str) -> list[str]:
    return [str(m.get("text", {}).get("body")) for m in stack.fake.sent if m["to"] == to]


async def texts(stack: Stack, learner: str) -> list[str]:
    return [said.text for said in (await session.load(stack.res.redis, learner)).messages]


async def test_a_turn_and_a_number_change_run_end_to_end(stack: Stack, db: str) -> None:
    old, new = c.SESSION_KEY.format(learner=f"wa:{OLD}"), c.SESSION_KEY.format(learner=f"wa:{NEW}")
    assert slot(old) != slot(new)  # RENAMENX between them would be CROSSSLOT
    assert (await stack.post(text_webhook(OLD, "wamid.cl1", "Hola, soy Ana"))).status_code == 200
    await stack.fake.wait_for(1, seconds=15)
    assert sent_to(stack, OLD) == ["Echo: Hola, soy Ana"]
    assert await texts(stack, f"wa:{OLD}") == ["Hola, soy Ana", "Echo: Hola, soy Ana"]
    ttl_before = await stack.res.redis.ttl(old)
    assert (await stack.post(json.dumps(p.changed_number(OLD, NEW, "wamid.cl2")).encode())).status_code == 200
    assert (await stack.post(text_webhook(NEW, "wamid.cl3", "Sigo aquí"))).status_code == 200
    await stack.fake.wait_for(2, seconds=15)
    assert sent_to(stack, NEW) == ["Echo: Sigo aquí"]
    assert await stack.res.redis.exists(old) == 0
    assert await texts(stack, f"wa:{NEW}") == ["Hola, soy Ana", "Echo: Hola, soy Ana", "Sigo aquí",
                                              "Echo: Sigo aquí"]  # the session followed the learner
    assert 0 < await stack.res.redis.ttl(new) <= max(ttl_before, 24 * 3600)
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT wa_id, (SELECT count(*) FROM messages) FROM learners")).fetchall()
    assert rows == [(NEW, 4)]  # one learner, two messages in and two replies out


async def test_the_login_lockout_counts_per_client_and_globally(stack: Stack) -> None:
    mine, everyone = "charla:admin:login-failures:127.0.0.1", "charla:admin:login-failures:all"
    assert slot(mine) != slot(everyone)  # the old MULTI and MGET over both were CROSSSLOT
    for _ in range(5):
        wrong = await log_in(stack, "not-a-token")
        assert wrong.headers["location"].endswith("flash=bad-token")
    locked = await log_in(stack, ADMIN)  # even the right token waits now
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 900
    for key in (mine, everyone):
        assert await stack.res.redis.get(key) == b"5"
        assert 0 < await stack.res.redis.ttl(key) <= 900  # each window expires: no lockout for good
    overview = await stack.http.get("/admin", headers={"authorization": f"Bearer {ADMIN}"})
    assert overview.status_code == 200  # the dashboard's overview reads the hash-tagged streams


async def cli(*argv: str, **env: str) -> Any:
    """A `charla` command (in a thread: the CLI runs its own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, list(argv), env=env)


async def test_alive_status_and_metrics_read_every_node(stack: Stack, db: str, redis_cluster: LocalCluster) -> None:
    beats = [c.HEARTBEAT_KEY.format(agent="conversation", consumer=name) for name in REPLICAS]
    assert len({slot(key) for key in beats}) == len(beats)  # MGET over them would be CROSSSLOT
    closing = asyncio.Event()
    replicas = [asyncio.create_task(heartbeat(stack.res.redis, "conversation", name, 0.2, dict, closing))
                for name in REPLICAS]
    try:
        await eventually(lambda: all_exist(stack, beats), 10, "three replicas' heartbeats")
        env = {"REDIS_URL": redis_cluster.url, "CHARLA_REDIS_CLUSTER": "true", "DATABASE_URL": db,
               "CHARLA_HEARTBEAT_S": "2"}
        for name in ("conversation", "orchestrator"):
            alive = await cli("alive", name, **env)
            assert alive.exit_code == 0, alive.output
            assert f"{name} is alive on {socket.gethostname()}" in alive.output
        status = await cli("status", "--json", **env)
        assert status.exit_code == 0, status.output
        report = json.loads(status.output)
        assert {b["consumer"] for b in report["heartbeats"]} >= {*REPLICAS}
        assert {s["stream"] for s in report["streams"]} == set(c.CONSUMER_GROUPS)
        metrics = await scraped(stack)
        assert metrics.value("charla_redis_up") == 1
        assert metrics.value("charla_live_processes", process="conversation") == 3
        assert metrics.value("charla_live_processes", process="orchestrator") == 1
        assert metrics.has("charla_group_pending", stream="inbound", group="conversation")
    finally:
        closing.set()
        await asyncio.gather(*replicas)


async def all_exist(stack: Stack, keys: list[str]) -> bool:
    return all([await stack.res.redis.exists(key) for key in keys])
