"""The processes benchmark B drives: Charla's real stack, a timestamping fake Graph API, the baseline server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bench.services import Services
from charla.cli.services import free_port
from charla.core import constants as c
from charla.core import liveness
from tests.support.fake_llm import llm_env, serve_fake_llm
from tests.support.helpers import eventually
from tests.support.servers import FakeGraph, serve_fake_graph
from tests.support.stack import Proc, stack_env, wait_healthy

# The production defaults (stack_env's are shortened for tests); the JSON reports them.
BUS_ENV = {"CHARLA_BUS_LEASE_MS": "15000", "CHARLA_HEARTBEAT_S": "2.0"}
AGENTS = {"conversation": c.STREAM_INBOUND, "memory": c.STREAM_TURNS, "sender": c.STREAM_OUTBOX}


@dataclass
class TimedGraph(FakeGraph):
    """A FakeGraph that records when each reply arrived (perf_counter s), keyed by `context.message_id`,
    and in `said` each message send as (arrival, context.message_id, text body)."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)
    said: list[tuple[float, str, str]] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)
    arrived: int = 0
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, wamids: Iterable[str]) -> None:
        """Set `all_arrived` once a reply to every one of `wamids` has arrived."""
        self.expected = set(wamids)
        self.arrived = len(self.expected & self.arrivals.keys())
        self.all_arrived = asyncio.Event()
        if self.arrived == len(self.expected):
            self.all_arrived.set()

    async def send(self, request: Request) -> JSONResponse:
        """Timestamp the reply, then answer like FakeGraph."""
        now = time.perf_counter()
        body: dict[str, Any] = await request.json()
        reply_to = str((body.get("context") or {}).get("message_id"))
        if reply_to in self.expected and reply_to not in self.arrivals:
            self.arrived += 1
        self.arrivals.setdefault(reply_to, []).append(now)
        if body.get("status") != "read":
            self.said.append((now, reply_to, str((body.get("text") or {}).get("body", ""))))
        if self.arrived == len(self.expected):
            self.all_arrived.set()
        return await super().send(request)


@contextlib.asynccontextmanager
async def timed_graph() -> AsyncIterator[tuple[TimedGraph, str]]:
    """Serve a TimedGraph in this event loop; yields it and its base URL (WHATSAPP_API_BASE_URL)."""
    fake = TimedGraph()
    async with serve_fake_graph(fake) as (_, url):
        yield fake, url


async def groups_ready(redis: Redis) -> None:
    """Wait until every agent's consumer group exists (events published earlier would be skipped)."""
    async def ready() -> bool:
        for group, stream in AGENTS.items():
            try:
                groups = await redis.xinfo_groups(stream)
            except ResponseError:  # no such stream yet
                return False
            if group not in {row["name"].decode() for row in groups}:
                return False
        return True

    await eventually(ready, 30, "agent groups created")


async def beating(redis: Redis, names: Iterable[str], seconds: float = 120) -> None:
    """Wait until each named agent writes its heartbeat, which it starts only once its handlers are built
    (models loaded): load offered earlier would be measured against a process still starting."""
    async def ready() -> bool:
        now, fresh = time.time(), liveness.LIVE_BEATS * float(BUS_ENV["CHARLA_HEARTBEAT_S"])
        return all([any(beat.age_s < fresh for beat in await liveness.beats(redis, name, now)) for name in names])

    await eventually(ready, seconds, f"agents ready: {', '.join(names)}")


async def drained(redis: Redis) -> bool:
    """True when no agent group holds an unacknowledged entry."""
    for group, stream in AGENTS.items():
        if int((await redis.xpending(stream, group))["pending"]):
            return False
    return True


@dataclass(frozen=True)
class Running:
    """A started server: its base URL and the process ids to meter (by role)."""

    url: str
    pids: dict[str, int]


def pid(proc: Proc) -> int:
    """The running process's id."""
    assert proc.proc is not None
    return proc.proc.pid


@contextlib.asynccontextmanager
async def charla_stack(services: Services, graph_url: str, redis: Redis, *, voice: bool = False
                       ) -> AsyncIterator[Running]:
    """`charla serve` and one process per agent, as in the end-to-end tests; the tutor's model is a fake
    Groq in this process that answers at once (so what is measured is Charla's own overhead). With
    `voice`, the voice agent too, at its production niceness."""
    async with serve_fake_llm() as (_, llm_url):
        names = [*AGENTS, "voice"] if voice else list(AGENTS)
        async with charla_processes(services, graph_url, redis, llm_env(llm_url, "groq"), names) as running:
            yield running


@contextlib.asynccontextmanager
async def charla_processes(services: Services, graph_url: str, redis: Redis, extra: dict[str, str],
                           names: Iterable[str] = tuple(AGENTS)) -> AsyncIterator[Running]:
    """`charla serve` and one process per named agent, with the production bus settings; `extra` adds to
    (or overrides) their environment, e.g. which models answer."""
    port = free_port()
    home = services.root / "home"
    home.mkdir(mode=0o755, exist_ok=True)
    env = stack_env(db=services.database_url, redis_url=services.redis_url, graph_url=graph_url, port=port,
                    home=str(home), **{**BUS_ENV, **extra})
    async with _processes(env, port, redis, list(names)) as running:
        yield running


@contextlib.asynccontextmanager
async def _processes(env: dict[str, str], port: int, redis: Redis, names: list[str]) -> AsyncIterator[Running]:
    async with processes(env, port, redis, names) as procs:
        yield Running(f"http://127.0.0.1:{port}", {name: pid(proc) for name, proc in procs.items()})


@contextlib.asynccontextmanager
async def processes(env: dict[str, str], port: int, redis: Redis, names: list[str]) -> AsyncIterator[dict[str, Proc]]:
    """`charla serve` (as "orchestrator") and `charla agent NAME` for each of `names`, once the orchestrator
    answers and the agents' groups exist; all stopped gracefully at the end."""
    procs = {"orchestrator": Proc(["serve"], env),
             **{name: Proc(["agent", name], {**env, "CHARLA_CONSUMER": f"{name}-1"}) for name in names}}
    try:
        for proc in procs.values():
            await proc.start()
        await wait_healthy(f"http://127.0.0.1:{port}")
        await groups_ready(redis)
        await beating(redis, names)
        yield procs
    finally:
        for proc in procs.values():
            await proc.stop()


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[Running]:
    """The baseline `python -m bench.bare` in a subprocess, once it answers."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bare", str(port),
                                                stdin=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:

            async def up() -> bool:
                try:
                    return (await client.post("/echo", json={})).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, 30, "baseline server up")
        yield Running(url, {"baseline server": proc.pid})
    finally:
        proc.terminate()
        await proc.wait()
