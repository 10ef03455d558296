"""The chaos run: learners write text and voice notes through signed webhooks while the conversation, memory,
voice and sender agents are SIGKILLed at random and restarted, Redis is restarted once (append-only file on)
and PostgreSQL once. Afterwards every accepted message must have been answered exactly once, in order, with
nothing pending, nothing dead-lettered and every learner's error map counting each turn once.

Each learner is a phone: it sends its messages one after another with a random pause, and re-sends a webhook
that was not answered 200 (as Meta does) until it is accepted. A message is *accepted* once a POST of it got
200; only accepted messages are owed an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bench.load import loadavg, percentiles_ms, progress
from bench.services import Services, prepare
from bench.stack import processes
from charla.cli.postgres import EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis
from charla.cli.services import free_port
from charla.core import constants as c
from charla.tutor import insights
from tests.support.fake_llm import FakeLLM, echo, last_user_text, llm_env, serve_fake_llm, system_of
from tests.support.helpers import eventually
from tests.support.payloads import sign, status_webhook, text_webhook
from tests.support.servers import FakeGraph, serve_fake_graph
from tests.support.stack import Proc, stack_env
from tests.support.voice_kit import note, speak, voice_webhook

KILLED = ("conversation", "memory", "voice", "sender")
PHRASES = ("I would like a cup of coffee, please.", "Where is the train station?", "My sister lives in Madrid.",
           "We went to the beach yesterday.", "Can you help me with my homework?")
OGG = "audio/ogg; codecs=opus"
# A category both Spanish and English have (charla.tutor.taxonomy): the run learns English, and a Spanish-only
# category would be fitted into another one.
CORRECTION = {"original": "yo es", "corrected": "yo soy", "category": "verb_conjugation", "explanation": "ser"}


@dataclass(frozen=True)
class ChaosOptions:
    """How big the run is and which faults it injects."""

    learners: int = 20
    messages: int = 50  # per learner
    voice_every: int = 5  # every n-th message of a learner is a voice note (0: text only)
    kills: int = 3  # SIGKILLs of each agent in KILLED
    pause_s: float = 1.0  # mean pause between one learner's messages (exponential)
    restart_redis: bool = True
    restart_postgres: bool = True
    seed: int = 10
    drain_s: float = 300.0  # how long the stack may take to answer everything once the learners are done


@dataclass
class StampedGraph(FakeGraph):
    """A FakeGraph that remembers when each message arrived (perf_counter s, parallel to `sent`) and, once
    `statuses_to` is set (the orchestrator's client), reports each accepted message with a signed `sent`
    status naming its outbound id, re-sent until answered 200, as Meta does."""

    sent_at: list[float] = field(default_factory=list)
    statuses_to: httpx.AsyncClient | None = None
    reported: Ledger = field(default_factory=lambda: Ledger())  # the statuses' deliveries, not the learners'
    _reporting: set[asyncio.Task[bool]] = field(default_factory=set)

    async def send(self, request: Request) -> JSONResponse:
        now = time.perf_counter()
        accepted = len(self.sent)
        response = await super().send(request)
        self.sent_at.extend([now] * (len(self.sent) - len(self.sent_at)))
        if self.statuses_to is not None and len(self.sent) > accepted:
            body = self.sent[-1]
            tag = body.get("biz_opaque_callback_data")
            status = status_webhook(self.ids[-1], "sent", str(body["to"]), str(tag) if tag else None)
            task = asyncio.create_task(post_until_accepted(self.statuses_to, self.reported, status, self.ids[-1]))
            self._reporting.add(task)
            task.add_done_callback(self._reporting.discard)
        return response

    def stop_reporting(self) -> None:
        self.statuses_to = None
        for task in list(self._reporting):
            task.cancel()


@dataclass
class Ledger:
    """What the learners sent and when each message was accepted."""

    accepted: dict[str, float] = field(default_factory=dict)  # wamid -> perf_counter when answered 200
    texts: dict[str, list[str]] = field(default_factory=dict)  # wa_id -> text lines accepted, in order
    voices: Counter[str] = field(default_factory=Counter)  # wa_id -> voice notes accepted
    line_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (wa_id, text line) -> wamid
    webhook_s: list[float] = field(default_factory=list)  # every POST's duration
    refused: Counter[int] = field(default_factory=Counter)  # status (0: no connection) -> POSTs not accepted
    given_up: int = 0  # messages never accepted (the webhook kept failing for 120 s)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def accept(self, wamid: str) -> None:
        """`wamid` was answered 200."""
        async with self._changed:
            self.accepted[wamid] = time.perf_counter()
            self._changed.notify_all()

    async def reached(self, count: float) -> None:
        """Return once at least `count` messages were accepted."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.accepted) >= count)


@dataclass
class Faults:
    """Faults injected so far."""

    kills: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)  # "redis" / "postgres" -> times restarted
    outage_s: dict[str, float] = field(default_factory=dict)


def wa_id(learner: int) -> str:
    return f"3470000{learner:04d}"


def tutor(provider: str, request: dict[str, Any]) -> str:
    """The fake tutor: echo the learner's lines and always find one verb mistake (so the memory agent
    has something to count); summaries as the default fake does."""
    if system_of(request).startswith(insights.SYSTEM[:40]):
        return echo(provider, request)
    return json.dumps({"reply": f"Echo: {last_user_text(request)}", "corrections": [CORRECTION]}, ensure_ascii=False)


def echoed_lines(body: str) -> list[str]:
    """The learner lines a reply echoed (the paragraph starting "Echo: "; voice replies quote first)."""
    for paragraph in body.split("\n\n"):
        if paragraph.startswith("Echo: "):
            return paragraph.removeprefix("Echo: ").split("\n")
    return []


async def post_until_accepted(client: httpx.AsyncClient, ledger: Ledger, body: bytes, wamid: str) -> bool:
    """POST a signed delivery until it is answered 200 (Meta retries failed deliveries); False after 120 s."""
    deadline, backoff = time.monotonic() + 120, 0.1
    headers = {"x-hub-signature-256": sign(body), "content-type": "application/json"}
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            status = (await client.post("/webhooks/whatsapp", content=body, headers=headers)).status_code
        except httpx.TransportError:
            status = 0
        ledger.webhook_s.append(time.perf_counter() - started)
        if status == 200:
            await ledger.accept(wamid)
            return True
        ledger.refused[status] += 1
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)
    ledger.given_up += 1
    return False


async def learner(client: httpx.AsyncClient, graph: FakeGraph, ledger: Ledger, notes: list[bytes], i: int,
                  options: ChaosOptions, rng: random.Random) -> None:
    """One phone: its messages in order, text or voice, with a random pause between them."""
    for n in range(options.messages):
        voice = bool(options.voice_every) and n % options.voice_every == options.voice_every - 1
        await send_message(client, graph, ledger, notes, i, n, voice=voice)
        await asyncio.sleep(rng.expovariate(1 / options.pause_s) if options.pause_s else 0)


async def send_message(client: httpx.AsyncClient, graph: FakeGraph, ledger: Ledger, notes: list[bytes], i: int,
                       n: int, *, voice: bool) -> bool:
    """Learner `i`'s `n`-th message (a voice note from `notes`, or the text "L{i} message {n}") until it is
    accepted; recorded in `ledger`. False if it never was."""
    who, wamid = wa_id(i), f"wamid.C{i:04d}.{n:05d}"
    texts = ledger.texts.setdefault(who, [])
    if voice:
        media_id = f"{i + 1}{n:06d}"  # Meta media ids are numeric (others are refused)
        graph.media[media_id] = (notes[(i + n) % len(notes)], OGG)
        accepted = await post_until_accepted(client, ledger, voice_webhook(who, wamid, media_id), wamid)
        ledger.voices[who] += accepted
        return accepted
    line = f"L{i} message {n}"
    if not await post_until_accepted(client, ledger, text_webhook(who, wamid, line), wamid):
        return False
    texts.append(line)
    ledger.line_of[(who, line)] = wamid
    return True


async def restart(name: str, server: EmbeddedRedis | EmbeddedPostgres | None, faults: Faults) -> None:
    """Stop `server` (Redis on SIGTERM writes its append-only file out; PostgreSQL's fast stop rolls back open
    transactions) and start it again on the same port."""
    assert server is not None
    progress(f"chaos: restarting {name}")
    started = time.perf_counter()
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    faults.outage_s[name] = round(time.perf_counter() - started, 2)
    faults.restarts[name] += 1


def fault_plan(options: ChaosOptions, rng: random.Random) -> list[tuple[float, str]]:
    """(share of messages accepted, fault) pairs in order: each agent's kills at random points, Redis at a
    third of the way, PostgreSQL at two thirds."""
    plan = [(rng.uniform(0.05, 0.9), name) for name in KILLED for _ in range(options.kills)]
    if options.restart_redis:
        plan.append((0.35, "redis"))
    if options.restart_postgres:
        plan.append((0.65, "postgres"))
    return sorted(plan)


async def inject(plan: list[tuple[float, str]], procs: dict[str, Proc], services: Services, ledger: Ledger,
                 total: int, faults: Faults, rng: random.Random) -> None:
    """Carry out the plan as the learners' messages are accepted."""
    for share, fault in plan:
        await ledger.reached(share * total)
        if fault == "redis":
            await restart(fault, services.redis_server, faults)
        elif fault == "postgres":
            await restart(fault, services.postgres, faults)
        else:
            await procs[fault].kill()
            faults.kills[fault] += 1
            progress(f"chaos: SIGKILLed {fault} at {len(ledger.accepted)}/{total} accepted")
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await procs[fault].start()


async def settled(redis: Redis, database_url: str, owed: int) -> bool:
    """Every accepted message answered and no consumer group holds an entry."""
    try:
        for stream, groups in c.CONSUMER_GROUPS.items():
            for group in groups:
                with contextlib.suppress(RedisError):
                    if int((await redis.xpending(stream, group))["pending"]):
                        return False
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await (await conn.execute("SELECT count(*) FROM messages WHERE direction = 'in' "
                                            "AND status IN ('answered', 'noted')")).fetchone()
    except (RedisError, psycopg.Error):
        return False
    return row is not None and int(row[0]) >= owed


async def audit(graph: StampedGraph, ledger: Ledger, redis: Redis, database_url: str) -> dict[str, Any]:
    """Count what was lost, doubled or left behind; the answer latencies of text lines."""
    lines: dict[str, list[str]] = {}
    first_answer: dict[str, float] = {}
    replies: Counter[tuple[str, str]] = Counter()
    for message, at in zip(graph.sent, graph.sent_at, strict=False):
        if message.get("type") != "text":
            continue
        who = str(message["to"])
        replies[(who, str((message.get("context") or {}).get("message_id")))] += 1
        for line in echoed_lines(str(message["text"]["body"])):
            lines.setdefault(who, []).append(line)
            wamid = ledger.line_of.get((who, line))
            if wamid is not None:
                first_answer.setdefault(wamid, at - ledger.accepted[wamid])
    lost = duplicated = out_of_order = voice_lines = 0
    for who, texts in ledger.texts.items():
        echoed = lines.get(who, [])
        ours = [line for line in echoed if line in set(texts)]
        voice_lines += len(echoed) - len(ours)
        counts = Counter(ours)
        lost += sum(1 for line in texts if counts[line] == 0)
        duplicated += sum(n - 1 for n in counts.values() if n > 1)
        out_of_order += int(list(dict.fromkeys(ours)) != [line for line in texts if counts[line]])
    dead = {stream: await redis.xlen(stream + c.DEAD_SUFFIX) for stream in c.CONSUMER_GROUPS}
    pending = {f"{stream.removeprefix(c.PREFIX + ':stream:')}/{group}": int((await redis.xpending(stream, group))[
        "pending"]) for stream, groups in c.CONSUMER_GROUPS.items() for group in groups}
    return {"text_lines_lost": lost, "text_lines_duplicated": duplicated, "learners_out_of_order": out_of_order,
            "voice_lines_echoed": voice_lines, "replies_sent_twice": sum(n - 1 for n in replies.values() if n > 1),
            "dead_letters": dead, "pending": pending, "answer_latency": percentiles_ms(list(first_answer.values())),
            **await database_audit(database_url)}


async def database_audit(database_url: str) -> dict[str, Any]:
    """Inbound rows by status, outbound rows by status, turns, and learners whose error map does not count
    each corrected turn exactly once."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        inbound: dict[str, int] = dict(await (await conn.execute(
            "SELECT status, count(*) FROM messages WHERE direction = 'in' GROUP BY 1")).fetchall())
        outbound: dict[str, int] = dict(await (await conn.execute(
            "SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY 1")).fetchall())
        unheard = await (await conn.execute(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'audio' "
            "AND coalesce(body, '') = ''")).fetchone()
        turns = await (await conn.execute(
            "SELECT count(*), coalesce(sum(cardinality(inbound_ids)), 0) FROM turns")).fetchone()
        mismatched = await (await conn.execute(
            """SELECT count(*) FROM learners l JOIN profiles p ON p.learner_id = l.id
               WHERE coalesce((p.data -> 'errors' -> 'verb_conjugation' ->> 'count')::int, 0)
                     <> (SELECT count(*) FROM turns t WHERE t.learner_id = l.id
                         AND jsonb_array_length(t.corrections) > 0)""")).fetchone()
    return {"inbound_rows": {str(k): int(v) for k, v in inbound.items()},
            "outbound_rows": {str(k): int(v) for k, v in outbound.items()},
            "voice_notes_unheard": int(unheard[0]) if unheard else 0,
            "turns": int(turns[0]) if turns else 0, "messages_in_turns": int(turns[1]) if turns else 0,
            "learners_with_inconsistent_error_counts": int(mismatched[0]) if mismatched else 0}


def violations(result: dict[str, Any], ledger: Ledger, drained: bool) -> list[str]:
    """What broke the promise (empty: nothing lost, nothing doubled, nothing left behind)."""
    audit_ = result["audit"]
    found = [f"{key}: {audit_[key]}" for key in ("text_lines_lost", "text_lines_duplicated", "learners_out_of_order",
                                                 "replies_sent_twice", "learners_with_inconsistent_error_counts")
             if audit_[key]]
    if not drained:
        found.append("the stack did not answer everything within the drain time")
    found += [f"dead letters on {stream}: {n}" for stream, n in audit_["dead_letters"].items() if n]
    found += [f"pending on {name}: {n}" for name, n in audit_["pending"].items() if n]
    owed = len(ledger.accepted)
    answered = sum(n for status, n in audit_["inbound_rows"].items() if status in ("answered", "noted"))
    if answered != owed:
        found.append(f"{owed} messages accepted but {answered} answered in the database")
    if audit_["messages_in_turns"] != answered - audit_["voice_notes_unheard"]:
        found.append(f"turns account for {audit_['messages_in_turns']} messages, not {answered}")
    if ledger.given_up:
        found.append(f"{ledger.given_up} messages never accepted by the webhook")
    return found


@contextlib.asynccontextmanager
async def chaos_stack(services: Services, free_messages: int, names: tuple[str, ...] = KILLED) -> AsyncIterator[
        tuple[StampedGraph, dict[str, Proc], str]]:
    """The fake Graph API and fake LLMs in this process; the orchestrator and the agents `names` as
    subprocesses. Yields the graph, the processes and the orchestrator's URL."""
    graph = StampedGraph()
    async with serve_fake_graph(graph) as (_, graph_url), serve_fake_llm(FakeLLM(replier=tutor)) as (_, llm_url):
        port = free_port()
        home = services.root / "home"
        home.mkdir(mode=0o755, exist_ok=True)
        env = stack_env(db=services.database_url, redis_url=services.redis_url, graph_url=graph_url, port=port,
                        home=str(home), FREE_MESSAGES=str(free_messages),
                        CHARLA_VOICE_NICE="0", CHARLA_VOICE_IDLE="false",
                        CHARLA_DEFAULT_TARGET_LANGUAGE="en", CHARLA_DEFAULT_NATIVE_LANGUAGE="es",
                        **llm_env(llm_url))
        redis = Redis.from_url(services.redis_url)
        url = f"http://127.0.0.1:{port}"
        try:
            async with processes(env, port, redis, list(names)) as procs, httpx.AsyncClient(
                    base_url=url, timeout=10) as reporter:
                graph.statuses_to = reporter
                yield graph, procs, url
        finally:
            graph.stop_reporting()
            await redis.aclose()


async def run(services: Services, options: ChaosOptions) -> dict[str, Any]:
    """Run the chaos scenario on `services` (whose servers it restarts); the figures and the violations."""
    rng = random.Random(options.seed)
    await prepare(services)
    progress("chaos: speaking the voice notes")
    notes = [note(speak(phrase, "en")) for phrase in PHRASES]
    ledger, faults = Ledger(), Faults()
    total = options.learners * options.messages
    started_load = loadavg()
    async with chaos_stack(services, options.messages * 4) as (graph, procs, url):
        redis = Redis.from_url(services.redis_url)
        try:
            progress(f"chaos: {options.learners} learners × {options.messages} messages, faults injected")
            started = time.perf_counter()
            faulting = asyncio.create_task(inject(fault_plan(options, rng), procs, services, ledger, total, faults,
                                                  rng))
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                await asyncio.gather(*(learner(client, graph, ledger, notes, i, options, random.Random(rng.random()))
                                       for i in range(options.learners)))
            if ledger.given_up:  # the plan waits for shares of accepted messages that will never come
                faulting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await faulting
            sent_s = time.perf_counter() - started
            progress(f"chaos: {len(ledger.accepted)} accepted in {sent_s:.0f} s; waiting for every answer")
            drained = await within(lambda: settled(redis, services.database_url, len(ledger.accepted)),
                                   options.drain_s)
            await within(lambda: graph_quiet(graph), 10)
            result: dict[str, Any] = {
                "options": options.__dict__, "loadavg_at_start": started_load, "loadavg_at_end": loadavg(),
                "messages_sent": total, "accepted": len(ledger.accepted),
                "voice_notes_accepted": sum(ledger.voices.values()), "seconds_sending": round(sent_s, 1),
                "seconds_to_settle": round(time.perf_counter() - started - sent_s, 1),
                "faults": {"sigkills": dict(faults.kills), "redis_restarts": faults.restarts["redis"],
                           "postgres_restarts": faults.restarts["postgres"], "outage_s": faults.outage_s},
                "webhook": {"posts": len(ledger.webhook_s), "refused": {str(k): v for k, v in ledger.refused.items()},
                            "latency": percentiles_ms(ledger.webhook_s)},
                "replies_sent": len(graph.sent), "sample_replies": [m.get("text") for m in graph.sent[:5]],
                "audit": await audit(graph, ledger, redis, services.database_url)}
        finally:
            await redis.aclose()
    result["violations"] = violations(result, ledger, drained)
    result["lost"] = result["audit"]["text_lines_lost"] + max(0, len(ledger.accepted) - sum(
        n for status, n in result["audit"]["inbound_rows"].items() if status in ("answered", "noted")))
    result["duplicated"] = result["audit"]["text_lines_duplicated"] + result["audit"]["replies_sent_twice"]
    return result


async def within(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Whether `check` came true within `seconds` (tests.support.helpers.eventually, as a verdict, not a failure)."""
    try:
        await eventually(check, seconds, "")
    except AssertionError:
        return False
    return True


async def graph_quiet(graph: StampedGraph) -> bool:
    """No reply arrived in the last 2 s (a late duplicate would have had time to show)."""
    return not graph.sent_at or time.perf_counter() - graph.sent_at[-1] > 2.0
