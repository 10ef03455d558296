"""compose.yaml run for real with podman-compose (`make deploy-test`, which builds the images first): signed
Meta webhooks into the published orchestrator, the conversation agent scaled to 3 replicas, one replica
restarted mid-run, and every message answered exactly once at a fake Graph API on the host."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from charla.cli.services import free_port
from charla.core import constants as c
from tests.support.fake_llm import FakeLLM, llm_env, serve_fake_llm
from tests.support.helpers import eventually
from tests.support.payloads import APP_SECRET
from tests.support.servers import GRAPH_TOKEN, FakeGraph, serve_fake_graph
from tests.support.stack import post_conversations, wa_id, wait_healthy

pytestmark = [pytest.mark.skipif(os.environ.get("CHARLA_DEPLOY_TEST") != "1",
                                 reason="needs podman and the built images: run by `make deploy-test`"),
              pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "charla-deploy-test"
HOST = "host.containers.internal"  # the host, as containers on a podman network reach it
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - the fakes must be reachable from the containers' network
LEARNERS, PER_LEARNER = 8, 25
AGENTS = ("conversation", "memory", "payments", "scheduler", "voice", "sender")


def compose(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    tool = os.environ.get("PODMAN_COMPOSE", "podman-compose")
    done = subprocess.run([tool, "-p", PROJECT, "-f", str(project / "compose.yaml"),
                           "-f", str(project / "compose.local.yaml"), *args],
                          cwd=project, check=False, capture_output=True, text=True, timeout=600)
    if check and done.returncode:
        raise AssertionError(f"podman-compose {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, timeout=120).stdout


def filled_env(graph_url: str, llm_url: str, port: int) -> str:
    """`.env.example` as an operator fills it in (production, Meta), with the providers pointed at the fakes."""
    values = {"POSTGRES_PASSWORD": secrets.token_hex(16), "REDIS_PASSWORD": secrets.token_hex(16),
              "CHARLA_ADMIN_TOKEN": secrets.token_urlsafe(32), "CHARLA_SECRET_KEY": secrets.token_hex(32),
              "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": secrets.token_hex(8),
              "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
              "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12), "STRIPE_WEBHOOK_SECRET": "whsec_"
              + secrets.token_hex(12), "STRIPE_PAYMENT_LINK": "https://buy.stripe.com/test_deploy"}
    extra = {**llm_env(llm_url.replace(EVERY_INTERFACE, HOST)),
             "WHATSAPP_API_BASE_URL": graph_url.replace(EVERY_INTERFACE, HOST),
             "CHARLA_PUBLISH": f"127.0.0.1:{port}", "CHARLA_BUS_LEASE_MS": "3000", "CHARLA_HEARTBEAT_S": "2",
             "CHARLA_LOG_LEVEL": "WARNING"}
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}={values.pop(name)}" if name in values else line)
    assert not values, f"not in .env.example: {values}"
    return "\n".join([*lines, *(f"{k}={v}" for k, v in extra.items())]) + "\n"


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraph, str]]:
    async with serve_fake_graph(host=EVERY_INTERFACE) as served:
        yield served


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    async with serve_fake_llm(host=EVERY_INTERFACE) as served:
        yield served


@pytest.fixture
async def stack(tmp_path: Path, graph: tuple[FakeGraph, str], llm: tuple[FakeLLM, str]) -> AsyncIterator[str]:
    """The compose project in a directory of its own (its .env filled in), up in the order its depends_on
    conditions say (podman 4.3 cannot wait for `service_healthy` itself); yields the orchestrator's URL."""
    for name in ("compose.yaml", "deploy/podman/compose.local.yaml"):
        shutil.copy(ROOT / name, tmp_path / Path(name).name)
    port = free_port()
    (tmp_path / ".env").write_text(filled_env(graph[1], llm[1], port))
    down(tmp_path)
    try:
        compose(tmp_path, "up", "-d", "--no-deps", "postgres", "redis")
        await healthy("postgres", 1)
        await healthy("redis", 1)
        compose(tmp_path, "up", "-d", "--no-deps", "migrate")
        assert podman("wait", replicas("migrate", every=True)[0]).strip() == "0", "migrate failed"
        compose(tmp_path, "up", "-d", "--no-deps", "orchestrator", *AGENTS)
        yield f"http://127.0.0.1:{port}"
    finally:
        logs = Path(os.environ.get("WORK", "/tmp/charla-deploy")) / "compose-logs.txt"
        logs.parent.mkdir(parents=True, exist_ok=True)
        logs.write_text(compose(tmp_path, "logs", check=False).stdout)
        down(tmp_path)


def down(project: Path) -> None:
    """`down -v`, and the replicas `--scale` added, which podman-compose's down does not know of."""
    compose(project, "down", "-v", "-t", "45", check=False)
    left = podman("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").split()
    if left:
        podman("rm", "-f", "-t", "45", *left)
    compose(project, "down", "-v", check=False)  # the network and volumes, now that nothing uses them


def replicas(service: str, every: bool = False) -> list[str]:
    """Names of the service's containers (running ones unless `every`)."""
    names = podman("ps", *(["-a"] if every else []), "--filter", f"label=com.docker.compose.project={PROJECT}",
                   "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}")
    return sorted(names.split())


def redis_cli(*args: str) -> str:
    return podman("exec", replicas("redis")[0], "redis-cli", *args).strip()


def healthy_count(service: str) -> int:
    """How many of the service's containers pass their compose health check, run now (podman without
    systemd has no timer running it)."""
    runs = [subprocess.run(["podman", "healthcheck", "run", name], capture_output=True, timeout=60, check=False)
            for name in replicas(service)]
    return len([run for run in runs if run.returncode == 0])


async def healthy(service: str, count: int) -> None:
    async def check() -> bool:
        return await asyncio.to_thread(healthy_count, service) >= count

    await eventually(check, 240, f"{count} healthy {service} container(s)")


def pending() -> list[str]:
    return [redis_cli("XPENDING", stream, group).splitlines()[0]
            for stream, group in ((c.STREAM_INBOUND, "conversation"), (c.STREAM_OUTBOX, "sender"))]


async def test_scaled_compose_stack_answers_every_message_exactly_once(
        stack: str, tmp_path: Path, graph: tuple[FakeGraph, str]) -> None:
    fake = graph[0]
    await wait_healthy(stack, seconds=240)
    compose(tmp_path, "up", "-d", "--no-deps", "--scale", "conversation=3", "conversation")
    await healthy("conversation", 3)
    conversation = replicas("conversation")
    assert len(conversation) == 3, conversation

    async def restart_one() -> None:
        await fake.wait_until(lambda: len(fake.echoed()) >= LEARNERS * PER_LEARNER // 3, seconds=300)
        await asyncio.to_thread(podman, "restart", "-t", "45", conversation[1])

    restarter = asyncio.create_task(restart_one())
    await post_conversations(stack, learners=LEARNERS, per_learner=PER_LEARNER)
    await restarter
    total = LEARNERS * PER_LEARNER
    await fake.wait_until(lambda: len(fake.echoed()) >= total, seconds=300)

    async def drained() -> bool:
        return await asyncio.to_thread(pending) == ["0", "0"]

    await eventually(drained, 60, "no pending entries")
    assert len(fake.echoed()) == total, "a message was answered twice"
    quoted = [r for r in fake.replies_to() if r != "None"]  # the parts after a reply's first quote nothing
    assert set(Counter(quoted).values()) == {1}, f"a reply was sent twice, or none quoted: {fake.sent[:3]}"
    for i in range(LEARNERS):
        assert fake.echoed(wa_id(i)) == [f"L{i} message {n}" for n in range(PER_LEARNER)]
    consumers = redis_cli("XINFO", "CONSUMERS", c.STREAM_INBOUND, "conversation")
    assert consumers.count("name") >= 3, "three replicas shared the conversation group"
    assert redis_cli("XLEN", c.STREAM_INBOUND + c.DEAD_SUFFIX) == "0"
    await healthy("conversation", 3)  # the restarted one is back and healthy
