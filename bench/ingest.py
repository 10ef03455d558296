"""Benchmark C: webhook ingest. Signed Meta text webhooks → 200, in one run on one machine, against:

- charla: `python -m charla serve` alone (real Redis and PostgreSQL, no agents): read the body, verify
  X-Hub-Signature-256, parse, dedupe on the wamid and XADD (one Lua script), answer 200;
- bare: the baseline FastAPI endpoint of bench/bare.py (reads and parses the JSON body, answers 200);
- pywa_async, pywa_sync: pywa's own FastAPI webhook route with signature validation on and a no-op message
  handler (bench/pywa_peer.py). pywa answers after validating; it parses, dedupes (in memory) and
  dispatches in a background task after the response, so its latency excludes that work, its throughput not.

All run under uvicorn with uvloop + httptools and the access log off, each in its own process, started
together and measured in turn, phase by phase (so a noisy neighbour hurts all of them alike), with the same
bytes: a unique wamid per request, signed with the app secret. For each: open-loop fixed offered rates
(latency from the scheduled start) and closed-loop throughput at a few client counts, in `rounds` rounds;
the best point is the maximum. The load generator is bench/rawhttp.py; CPU shares show who saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import httpx
from redis.asyncio import Redis

from bench import pywa_peer
from bench.load import CpuMeter, Send, closed_loop, http_summary, loadavg, open_loop, progress, ratio, saturated
from bench.rawhttp import RawClient, request_head, request_tail
from bench.services import Services, UsageMeter
from bench.stack import BUS_ENV, Running
from charla.cli.services import free_port
from charla.core import constants as c
from tests.support.helpers import eventually
from tests.support.payloads import sign, text_webhook
from tests.support.stack import stack_env

WEBHOOK = "/webhooks/whatsapp"
GENERATOR = "benchmark (load generator)"
HEADERS = {"Content-Type": "application/json"}
MAX_PER_S_GUESS = 12_000  # payloads set aside per closed-loop second (the bare endpoint does ~10k/s here)
LATE_MS = 5.0  # an open-loop phase whose p99 schedule lag exceeds this was paced badly by the generator
WARMUP_CLIENTS = 4

Json = dict[str, Any]


@dataclass(frozen=True)
class IngestOptions:
    """Load shape of the ingest benchmark."""

    rates: tuple[float, ...] = (200.0, 500.0, 1000.0)
    seconds: float = 2.0  # per offered rate
    closed_loop_s: float = 0.75  # per client count and round
    closed_loop_clients: tuple[int, ...] = (1, 4, 16)
    rounds: int = 2
    warmup_s: float = 0.5
    learners: int = 500
    connections: int = 256  # most keep-alive connections the generator opens to one server

    def closed_loop_cap(self) -> int:
        return int(self.closed_loop_s * MAX_PER_S_GUESS)

    def warmup_cap(self) -> int:
        return int(self.warmup_s * MAX_PER_S_GUESS)

    def payloads_needed(self) -> int:
        """Unique payloads one server may consume: warm-up, open loop, every closed-loop point."""
        open_total = sum(int(rate * self.seconds) for rate in self.rates)
        closed_total = self.rounds * len(self.closed_loop_clients) * self.closed_loop_cap()
        return self.warmup_cap() + open_total + closed_total


def signed_body(i: int, learners: int, prefix: str = "I") -> bytes:
    """text_webhook with wamid `wamid.<prefix><i>`, its contact carrying a business-scoped `user_id` (and the
    message `from_user_id`) as Meta deliveries may since 2026: pywa 4.5.0 raises KeyError('user_id') on
    contacts without one, which would benchmark its error path instead of its handler."""
    learner = i % learners
    document = json.loads(text_webhook(f"3461{learner:07d}", f"wamid.{prefix}{i:08d}",
                                       f"Mensaje {i // learners} de mi práctica diaria"))
    value = document["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["user_id"] = value["messages"][0]["from_user_id"] = f"ES.{learner:019d}"
    return json.dumps(document).encode()


def request_tails(count: int, learners: int) -> list[bytes]:
    """`count` signed requests without their request line and Host (see rawhttp.request_tail)."""
    tails = []
    for i in range(count):
        body = signed_body(i, learners)
        tails.append(request_tail(body, {**HEADERS, "X-Hub-Signature-256": sign(body)}))
    return tails


@dataclass(frozen=True)
class Target:
    """A running server under test: name, base URL and pids, webhook path, and Redis when it uses it."""

    name: str
    running: Running
    path: str
    redis: Redis | None = None


@dataclass
class Feed:
    """Hands out fresh requests to one server, so every request carries a wamid it has not seen."""

    head: bytes
    tails: Sequence[bytes]
    client: RawClient
    used: int = 0

    @classmethod
    def to(cls, target: Target, tails: Sequence[bytes], connections: int) -> Feed:
        host, port = target.running.url.removeprefix("http://").split(":")
        return cls(request_head(f"{host}:{port}", target.path), tails, RawClient(host, int(port), limit=connections))

    def sender(self) -> tuple[Send, int]:
        """A Send over the unused requests (index 0 = the next one) and how many remain."""
        head, tails, base, client = self.head, self.tails, self.used, self.client

        async def send(i: int) -> int:
            return await client.send(head + tails[base + i])

        return send, len(tails) - base


@dataclass(frozen=True)
class Meter:
    """CPU shares of the generator, the server and (for Charla) redis-server over one measured phase."""

    cpu: CpuMeter | None
    usage: UsageMeter | None

    @classmethod
    async def begin(cls, target: Target) -> Meter:
        pids = {GENERATOR: os.getpid(), **target.running.pids}
        if target.redis is not None:
            return cls(None, await UsageMeter.begin(target.redis, pids))
        return cls(CpuMeter(pids), None)

    async def end(self, requests: int) -> Json:
        """Shares of one core, which processes saturated, and whether the generator or the machine did."""
        if self.usage is not None:
            figures = await self.usage.end(max(requests, 1))
        else:
            assert self.cpu is not None
            figures = {"cpu_share_of_one_core": self.cpu.shares()}
        shares = cast(dict[str, float], figures["cpu_share_of_one_core"])
        busy = saturated(shares)
        return {**figures, "saturated_processes": busy, "load_generator_saturated": GENERATOR in busy,
                "machine_saturated": shares["whole machine"] >= 0.9 * (os.cpu_count() or 1)}


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Keep the cyclic GC out of a measured phase: with ~60k requests alive a full collection stalls the
    generator for tens of milliseconds, which open-loop latencies would charge to the server."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


Verify = Callable[[int], Awaitable[Json]]


@dataclass
class Subject:
    """A server under test, its feed, what is known about it, and its measurements so far."""

    target: Target
    feed: Feed
    about: Json
    verify: Verify  # given the requests answered 200, checks the server did the work once for each
    log: Path
    warmup: Json = field(default_factory=dict)
    open_loop: list[Json] = field(default_factory=list)
    closed_loop: list[Json] = field(default_factory=list)

    def ok(self) -> int:
        """Requests answered 200 so far (warm-up included)."""
        return sum(int(phase["ok"]) for phase in [self.warmup, *self.open_loop, *self.closed_loop])

    async def report(self, options: IngestOptions) -> Json:
        """The server's JSON-ready result."""
        best = max(self.closed_loop, key=lambda point: float(point["achieved_per_s"]))
        closed = {"seconds_per_point": options.closed_loop_s, "rounds": options.rounds,
                  "max_per_s": best["achieved_per_s"], "max_at_clients": best["clients"],
                  "max_in_round": best["round"], "points": self.closed_loop}
        return {**self.about, "warmup": self.warmup, "open_loop": self.open_loop, "closed_loop": closed,
                "requests_sent": self.feed.used, "connections_opened": self.feed.client.opened,
                **await self.verify(self.ok()), **stderr_report(self.log)}


async def warm_up(subject: Subject, options: IngestOptions) -> None:
    """A few closed-loop clients for warmup_s (connections, caches and pools warm)."""
    send, left = subject.feed.sender()
    progress(f"ingest {subject.target.name}: warm-up {options.warmup_s:g}s")
    samples = await closed_loop(send, concurrency=WARMUP_CLIENTS, seconds=options.warmup_s,
                                limit=min(left, options.warmup_cap()))
    subject.feed.used += len(samples)
    subject.warmup = {"seconds": options.warmup_s, "clients": WARMUP_CLIENTS, **http_summary(samples, scheduled=False)}


async def measure_open(subject: Subject, rate: float, seconds: float) -> Json:
    """One fixed offered rate for `seconds`."""
    send, left = subject.feed.sender()
    total = min(int(rate * seconds), left)
    progress(f"ingest {subject.target.name}: {total} webhooks at {rate:g}/s")
    with no_gc_pauses():
        meter = await Meter.begin(subject.target)
        samples = await open_loop(send, rate=rate, total=total)
        usage = await meter.end(len(samples))
    subject.feed.used += len(samples)
    summary = http_summary(samples)
    lag = cast(Json, summary["schedule_lag"])["p99_ms"]
    return {"offered_per_s": rate, **summary, **usage, "generator_late": lag is not None and lag > LATE_MS}


async def measure_closed(subject: Subject, clients: int, round_: int, options: IngestOptions) -> Json:
    """`clients` closed-loop clients for closed_loop_s (or until this point's share of payloads runs out)."""
    send, left = subject.feed.sender()
    cap = min(options.closed_loop_cap(), left)
    progress(f"ingest {subject.target.name}: closed loop, {clients} client(s), {options.closed_loop_s:g}s")
    with no_gc_pauses():
        meter = await Meter.begin(subject.target)
        samples = await closed_loop(send, concurrency=clients, seconds=options.closed_loop_s, limit=cap)
        usage = await meter.end(len(samples))
    subject.feed.used += len(samples)
    return {"round": round_, "clients": clients, **http_summary(samples, scheduled=False), **usage,
            "payloads_ran_out": len(samples) >= cap}


async def until_up(url: str) -> None:
    """Wait until GET `url` answers 200."""
    async with httpx.AsyncClient(timeout=2) as client:

        async def up() -> bool:
            try:
                return (await client.get(url)).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, 60, f"{url} up")


@contextlib.asynccontextmanager
async def server_process(name: str, args: Sequence[str], port: int, ready: str, log: Path,
                         env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """`python ARGS` in a subprocess (stderr to `log`), once GET `ready` answers 200; SIGTERM on exit."""
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        await until_up(url + ready)
        yield Running(url, {name: proc.pid})
    finally:
        proc.terminate()
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def stderr_report(log: Path) -> Json:
    """How much the server wrote to stderr (warnings, tracebacks) and its first lines."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {"stderr_lines": len(lines), "stderr_head": lines[:5]}


async def post(url: str, body: bytes, signature: str | None) -> Json:
    """POST one webhook with httpx; its status and (short) body."""
    headers = {**HEADERS, **({"X-Hub-Signature-256": signature} if signature else {})}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    return {"status": response.status_code, "body": response.text[:200]}


async def signature_checks(url: str) -> Json:
    """A valid delivery, the same again, a wrong signature and none: what the server answered to each."""
    body = signed_body(0, 1, prefix="V")
    checks = {"valid": await post(url, body, sign(body)), "duplicate": await post(url, body, sign(body)),
              "wrong_signature": await post(url, body, sign(body, "not-the-app-secret")),
              "no_signature": await post(url, body, None)}
    status = {name: int(check["status"]) for name, check in checks.items()}
    return {**checks, "valid_accepted": status["valid"] == 200 and status["duplicate"] == 200,
            "wrong_signature_rejected": status["wrong_signature"] in (401, 403),
            "no_signature_rejected": 400 <= status["no_signature"] < 500}


@contextlib.asynccontextmanager
async def closing(subject: Subject) -> AsyncIterator[Subject]:
    """Yield `subject`; close its load-generator connections afterwards."""
    try:
        yield subject
    finally:
        subject.feed.client.close()


@contextlib.asynccontextmanager
async def charla_subject(services: Services, tails: Sequence[bytes], options: IngestOptions) -> AsyncIterator[Subject]:
    """`charla serve` alone; afterwards the inbound stream must hold one entry per request answered 200."""
    redis = Redis.from_url(services.redis_url)
    port, home, log = free_port(), services.root / "home", services.root / "ingest-charla.log"
    home.mkdir(mode=0o755, exist_ok=True)
    env = stack_env(db=services.database_url, redis_url=services.redis_url, graph_url="http://127.0.0.1:9/v23.0",
                    port=port, home=str(home), **BUS_ENV)
    try:
        await redis.flushdb()
        async with server_process("charla serve", ["-m", "charla", "serve"], port, "/healthz", log, env) as running:
            target = Target("charla", running, WEBHOOK, redis)
            checks = await signature_checks(running.url + WEBHOOK)
            base = int(await redis.xlen(c.STREAM_INBOUND))

            async def verify(ok: int) -> Json:
                added = int(await redis.xlen(c.STREAM_INBOUND)) - base
                return {"inbound_entries_added": added, "inbound_entries_expected": ok}

            about = {"what": "python -m charla serve (orchestrator only, no agents): verify HMAC, parse, dedupe on "
                             "the wamid, XADD to the inbound stream, 200", "signature_checks": checks}
            async with closing(Subject(target, Feed.to(target, tails, options.connections), about, verify,
                                       log)) as subject:
                yield subject
    finally:
        await redis.flushdb()
        await redis.aclose()


@contextlib.asynccontextmanager
async def bare_subject(services: Services, tails: Sequence[bytes], options: IngestOptions) -> AsyncIterator[Subject]:
    """The bench/bare.py endpoint, posted the same signed bytes (it ignores the signature)."""
    port, log = free_port(), services.root / "ingest-bare.log"
    async with server_process("bare server", ["-m", "bench.bare", str(port)], port, "/healthz", log) as running:
        target = Target("bare", running, "/echo")

        async def verify(_: int) -> Json:
            return {}

        about = {"what": "bench/bare.py: FastAPI POST /echo reading and parsing the JSON body, answering 200 "
                         "(no signature check, no Redis)"}
        async with closing(Subject(target, Feed.to(target, tails, options.connections), about, verify,
                                   log)) as subject:
            yield subject


async def pywa_stats(url: str) -> Json:
    async with httpx.AsyncClient(timeout=5) as client:
        stats: Json = (await client.get(url + "/bench/stats")).json()
    return stats


async def handled(url: str, expected: int) -> int:
    """Messages pywa's handler saw, once it reached `expected` or stopped moving (background tasks finish)."""
    last, still = -1, 0
    async with asyncio.timeout(30):
        while (seen := int((await pywa_stats(url))["messages"])) < expected and still < 10:
            still = still + 1 if seen == last else 0
            last = seen
            await asyncio.sleep(0.1)
    return seen


def pywa_starter(variant: pywa_peer.Variant) -> Starter:
    """A Starter for bench/pywa_peer.py; its verify checks the handler saw every accepted message once."""

    @contextlib.asynccontextmanager
    async def start(services: Services, tails: Sequence[bytes], options: IngestOptions) -> AsyncIterator[Subject]:
        port, log = free_port(), services.root / f"ingest-pywa-{variant}.log"
        args = ["-m", "bench.pywa_peer", str(port), variant]
        async with server_process(f"pywa server ({variant})", args, port, "/bench/stats", log) as running:
            target = Target(f"pywa_{variant}", running, pywa_peer.WEBHOOK_PATH)
            checks = await signature_checks(running.url + pywa_peer.WEBHOOK_PATH)
            settings = await pywa_stats(running.url)

            async def verify(ok: int) -> Json:
                expected = 1 + ok  # + the valid signature check (its duplicate is skipped)
                return {"handler_calls": await handled(running.url, expected), "handler_calls_expected": expected}

            about = {"what": f"pywa {version('pywa')} {settings['pywa_class']} on FastAPI, validate_updates=True "
                             "with app_secret, no-op message handler; 200 after the signature check, parsing and "
                             "handler in a background task", "settings": settings, "signature_checks": checks}
            async with closing(Subject(target, Feed.to(target, tails, options.connections), about, verify,
                                       log)) as subject:
                yield subject

    return start


Starter = Callable[[Services, Sequence[bytes], IngestOptions], contextlib.AbstractAsyncContextManager[Subject]]
STARTERS: dict[str, Starter] = {"charla": charla_subject, "bare": bare_subject,
                                "pywa_async": pywa_starter("async"), "pywa_sync": pywa_starter("sync")}


async def measure_all(subjects: Sequence[Subject], options: IngestOptions) -> None:
    """Warm-ups, then each offered rate and each closed-loop point, server after server (alternate order
    in alternate rounds)."""
    for subject in subjects:
        await warm_up(subject, options)
    for rate in options.rates:
        for subject in subjects:
            subject.open_loop.append(await measure_open(subject, rate, options.seconds))
    for round_ in range(options.rounds):
        for clients in options.closed_loop_clients:
            for subject in subjects if round_ % 2 == 0 else subjects[::-1]:
                subject.closed_loop.append(await measure_closed(subject, clients, round_, options))


def closed_max(result: Json) -> float:
    return float(result["closed_loop"]["max_per_s"])


def at_rate(result: Json, rate: float) -> Json:
    """The open-loop phase at `rate` (empty when it was not measured)."""
    return next((phase for phase in result["open_loop"] if phase["offered_per_s"] == rate), {})


def versus(charla: Json, other: Json, rates: Sequence[float]) -> Json:
    """Charla's achieved throughput and latency divided by another server's: per rate and at the maximum."""
    per_rate = {}
    for rate in rates:
        mine, theirs = at_rate(charla, rate), at_rate(other, rate)
        per_rate[f"{rate:g}_per_s"] = {
            "achieved": ratio(mine.get("achieved_per_s"), theirs.get("achieved_per_s")),
            "p50": ratio(mine.get("latency", {}).get("p50_ms"), theirs.get("latency", {}).get("p50_ms")),
            "p99": ratio(mine.get("latency", {}).get("p99_ms"), theirs.get("latency", {}).get("p99_ms"))}
    return {"closed_loop_max_per_s": ratio(closed_max(charla), closed_max(other)), "open_loop": per_rate}


def targets(charla: Json, bare: Json, pywa: Json) -> Json:
    """The issue's targets: ≥ 0.6 of the bare endpoint's maximum, ahead of pywa, p99 < 10 ms at 1,000/s."""
    share = ratio(closed_max(charla), closed_max(bare))
    at_1000 = at_rate(charla, 1000.0)
    p99 = at_1000.get("latency", {}).get("p99_ms")
    return {"throughput_vs_bare_at_least_0.6": {"ratio": share, "met": share is not None and share >= 0.6},
            "ahead_of_pywa": {"charla_max_per_s": closed_max(charla), "pywa_max_per_s": closed_max(pywa),
                              "met": closed_max(charla) > closed_max(pywa)},
            "p99_under_10ms_at_1000_per_s": {
                "p99_ms": p99, "errors": at_1000.get("errors"), "achieved_per_s": at_1000.get("achieved_per_s"),
                "met": (p99 is not None and p99 < 10 and at_1000.get("errors") == 0) if at_1000 else None}}


def flagged_phases(results: dict[str, Json]) -> dict[str, list[str]]:
    """Per server, the phases in which the load generator or the whole machine kept the CPU busy, or the
    generator started requests late (p99 schedule lag over LATE_MS): figures to distrust."""
    report: dict[str, list[str]] = {}
    for name, result in results.items():
        phases = [(f"open {p['offered_per_s']:g}/s", p) for p in result["open_loop"]]
        phases += [(f"closed {p['clients']} client(s), round {p['round']}", p) for p in result["closed_loop"]["points"]]
        report[name] = [f"{label}: {', '.join(flags)}" for label, p in phases
                        if (flags := [flag for flag in ("load_generator_saturated", "machine_saturated",
                                                        "generator_late") if p.get(flag)])]
    return report


def summary(results: dict[str, Json], options: IngestOptions) -> Json:
    """Ratios, the issue's targets and the phases to distrust."""
    best = max(("pywa_async", "pywa_sync"), key=lambda name: closed_max(results[name]))
    return {"ratios": {"charla_vs_bare": versus(results["charla"], results["bare"], options.rates),
                       "charla_vs_pywa": versus(results["charla"], results[best], options.rates),
                       "charla_vs_pywa_compared_with": best},
            "targets": targets(results["charla"], results["bare"], results[best]),
            "flagged_phases": flagged_phases(results)}


async def run(services: Services, options: IngestOptions) -> Json:
    """The whole ingest benchmark; returns its JSON-ready result."""
    started, before = time.perf_counter(), loadavg()
    tails = request_tails(options.payloads_needed(), options.learners)
    progress(f"ingest: {len(tails)} signed requests built in {time.perf_counter() - started:.1f}s")
    async with contextlib.AsyncExitStack() as stack:
        subjects = [await stack.enter_async_context(start(services, tails, options)) for start in STARTERS.values()]
        await measure_all(subjects, options)
        results = {subject.target.name: await subject.report(options) for subject in subjects}
    gc.unfreeze()
    return {"loadavg_before": before, "loadavg_after": loadavg(), "offered_rates_per_s": list(options.rates),
            "seconds_per_rate": options.seconds, "learners": options.learners,
            "body_bytes": len(signed_body(0, options.learners)),
            "payload": "tests.support.payloads.text_webhook (one text message, unique wamid) plus "
                       "contacts[0].user_id and messages[0].from_user_id: pywa 4.5.0 raises KeyError('user_id') "
                       "without them",
            "load_generator": "bench/rawhttp.py in the benchmark process: pre-serialized requests, keep-alive, "
                              f"one request in flight per connection, at most {options.connections} connections",
            "latency_origin": "open loop: scheduled send time t0 + i/rate; closed loop: send time",
            "uvicorn": "uvloop + httptools, access log off, one worker process per server",
            "order": "servers started together, measured in turn phase by phase; closed-loop rounds alternate order",
            "generator_late_threshold_ms": LATE_MS, "stack_env": BUS_ENV, **results, **summary(results, options),
            "seconds": round(time.perf_counter() - started, 1)}
