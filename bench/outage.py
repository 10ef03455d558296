"""Benchmark O: provider outages, through Charla's real processes.

The orchestrator, conversation, memory and sender agents run as subprocesses; Groq and Anthropic are one
FakeLLM in this process (Groq behind a Gate that can refuse connections), the Graph API a fake that
timestamps every send. Signed text webhooks are offered open-loop at `rate` per second, message i from
learner i % learners, so each learner writes every learners/rate seconds: longer than a slow answer takes
(a learner who writes again while their turn is still with the model gets both answered together, later).
The providers change phase by phase: healthy; Groq answering 503 "over capacity"; Groq refusing
connections; Groq still refused and Claude slow by `slow_s` (20 s, under a model timeout set above it);
both down (Groq's 503, Anthropic's 529 overloaded); both back. Then a drain, until everything is answered.

Per phase: webhook POST latency from its scheduled start (p99 against the healthy phase's), and for each
inbound message the time to its first learner-visible reply (the answer, or the one honest delay message),
who answered, the model requests, the load. A message sent after its learner was told "give me a moment"
and before the answer is "already told": one delay message per unanswered stretch is the design, a second
would be a duplicate. Violations (empty = pass): webhook p99 ≥ 300 ms or a failed webhook in any phase, a
message neither answered nor told within 30 s, a duplicate (an inbound answered twice, a second delay
message in one stretch, a delay after the answer), a message still unanswered after the drain.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench.load import CpuMeter, Sample, http_summary, loadavg, open_loop, percentiles_ms, progress, ratio
from bench.services import Services
from bench.stack import AGENTS, TimedGraph, charla_processes, timed_graph
from bench.webhook import HEADERS, LIMITS, Webhook
from charla.core.catalog import say, shipped
from charla.tutor import insights
from tests.support.fake_llm import OVERLOADED_529, FakeLLM, Gate, error, gated, serve_fake_llm, system_of
from tests.support.helpers import eventually
from tests.support.payloads import sign, text_webhook

DELAYS = tuple(say("delay", lang) for lang in shipped())
PROVIDERS = ("groq", "anthropic")


@dataclass(frozen=True)
class OutageOptions:
    """Load, phase lengths (seconds) and limits of the scenario; `env` adds settings to the stack."""

    rate: float = 4.0
    learners: int = 120
    healthy_s: float = 30.0
    groq_503_s: float = 30.0
    groq_refused_s: float = 30.0
    slow_phase_s: float = 60.0
    slow_s: float = 20.0
    both_down_s: float = 60.0
    back_s: float = 60.0
    drain_s: float = 300.0
    within_s: float = 30.0
    p99_limit_ms: float = 300.0
    warmup: int = 10
    timeout_s: float | None = None  # CHARLA_LLM_TIMEOUT_S; None: Charla's default (30 s, patience 15 s)
    env: dict[str, str] = field(default_factory=dict)
    tag: str = "O"


# `--quick` and tests/system/test_outage.py: phases of seconds, the slow provider 2 s, the breaker cooldown and the
# deferred-turn retry scaled down with them, the bound 6 s (an answer through a refused Groq and a slow Claude
# takes ~3.5 s). The slow phase is long enough, and the rate high enough (16 turns waiting on Claude), that a
# conversation agent with too few slots falls behind by more than the bound.
QUICK = OutageOptions(rate=8.0, learners=32, healthy_s=4.0, groq_503_s=4.0, groq_refused_s=4.0, slow_phase_s=12.0,
                      slow_s=2.0, both_down_s=5.0, back_s=6.0, drain_s=60.0, within_s=6.0, warmup=4, timeout_s=7.0,
                      env={"CHARLA_LLM_BREAKER_COOLDOWN_S": "2", "CHARLA_TURN_RETRY_S": "1",
                           "CHARLA_PATIENCE_S": "3"})


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    groq: str  # "up", "503" or "refused"
    anthropic: str  # "up", "slow" or "529"


def phases(options: OutageOptions) -> list[Phase]:
    """The scenario's phases, in order."""
    return [Phase("healthy", options.healthy_s, "up", "up"), Phase("groq_503", options.groq_503_s, "503", "up"),
            Phase("groq_refused", options.groq_refused_s, "refused", "up"),
            Phase("groq_refused_anthropic_slow", options.slow_phase_s, "refused", "slow"),
            Phase("both_down", options.both_down_s, "503", "529"), Phase("both_back", options.back_s, "up", "up")]


@dataclass(frozen=True)
class Inbound:
    """One learner message of the scenario: whose, their how-many-th, in which phase."""

    learner: int
    seq: int
    phase: int
    hook: Webhook


def wa_id(learner: int, group: str = "2") -> str:
    """A learner's WhatsApp number (group "2": the measured learners, "3": the warm-up's)."""
    return f"346{group}{learner:07d}"


def hook(learner: int, wamid: str, text: str, group: str = "2") -> Webhook:
    """A signed text webhook from `learner`."""
    body = text_webhook(wa_id(learner, group), wamid, text)
    return Webhook(wamid, body, sign(body))


def inbounds(options: OutageOptions, plan: Sequence[Phase]) -> list[Inbound]:
    """The messages offered, message i due i/rate seconds after the start."""
    ends = list(itertools.accumulate(phase.seconds for phase in plan))
    made = []
    for i in range(int(options.rate * ends[-1])):
        learner, seq = i % options.learners, i // options.learners
        made.append(Inbound(learner, seq, bisect.bisect_right(ends, i / options.rate),
                            hook(learner, f"wamid.{options.tag}{i:07d}", f"Mensaje {seq} de mi práctica diaria")))
    return made


def stack_settings(options: OutageOptions, llm_url: str, groq_url: str) -> dict[str, str]:
    """Both providers pointed at the fakes, production settings otherwise (free quota out of the way)."""
    return {"CHARLA_LOCAL_MODEL": "off", "GROQ_API_KEY": "gsk_test", "GROQ_BASE_URL": groq_url,
            "ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": llm_url,
            "FREE_MESSAGES": "1000000", "CHARLA_LOG_LEVEL": "ERROR",
            **({"CHARLA_LLM_TIMEOUT_S": f"{options.timeout_s:g}"} if options.timeout_s is not None else {}),
            **options.env}


@dataclass(frozen=True)
class Mark:
    """The state of things when a phase began (the last mark: when the load ended)."""

    at: float
    requests: dict[str, int]
    loadavg: list[float]


@dataclass
class Providers:
    """The fake Groq and Anthropic, switched phase by phase."""

    llm: FakeLLM
    gate: Gate
    slow_s: float
    marks: list[Mark] = field(default_factory=list)

    def mark(self) -> None:
        self.marks.append(Mark(time.perf_counter(), {p: self.llm.calls(p) for p in PROVIDERS}, loadavg()))

    async def enter(self, phase: Phase) -> None:
        """Make the providers behave as `phase` says."""
        self.mark()
        down: dict[str, dict[str, Any]] = {}
        if phase.groq == "503":
            down["groq"] = error("groq_error_503.json")
        if phase.anthropic == "529":
            down["anthropic"] = OVERLOADED_529
        self.llm.down = down
        self.llm.delay_s = {"anthropic": self.slow_s} if phase.anthropic == "slow" else {}
        if phase.groq == "refused":
            self.gate.refuse()
        else:
            await self.gate.accept()

    def requests(self, index: int) -> dict[str, dict[str, int]]:
        """Model requests per provider during phase `index` (each SDK retry counts; a refused connection does
        not arrive): tutor turns and memory summaries apart. Index len(phases): during the drain."""
        counts: dict[str, dict[str, int]] = {}
        for name in PROVIDERS:
            seen = self.llm.requests[name][self.marks[index].requests[name]:self.marks[index + 1].requests[name]]
            summaries = sum(1 for r in seen if system_of(r).startswith(insights.SYSTEM[:40]))
            counts[name] = {"tutor": len(seen) - summaries, "summary": summaries}
        return counts


async def drive(client: httpx.AsyncClient, providers: Providers, plan: Sequence[Phase],
                messages: Sequence[Inbound], rate: float) -> list[Sample]:
    """Offer `messages` open-loop, switching the providers as the schedule enters each phase."""
    entered = -1

    async def send(i: int) -> int:
        nonlocal entered
        while entered < messages[i].phase:
            entered += 1
            progress(f"outage: phase {plan[entered].name} ({plan[entered].seconds:g}s)")
            await providers.enter(plan[entered])
        sent = messages[i].hook
        response = await client.post("/webhooks/whatsapp", content=sent.body,
                                     headers={**HEADERS, "x-hub-signature-256": sent.signature})
        return response.status_code

    samples = await open_loop(send, rate=rate, total=len(messages))
    providers.mark()
    return samples


def answered(fake: TimedGraph) -> set[str]:
    """The message ids an answer (not a delay message) replied to."""
    return {reply_to for _, reply_to, text in fake.said if not text.startswith(DELAYS)}


async def warm_up(client: httpx.AsyncClient, fake: TimedGraph, count: int) -> None:
    """A few messages from other learners, answered before the measured load (pools and caches warm)."""
    hooks = [hook(i, f"wamid.W{i:05d}", "Hola, ¿qué tal?", group="3") for i in range(count)]
    for sent in hooks:
        await client.post("/webhooks/whatsapp", content=sent.body,
                          headers={**HEADERS, "x-hub-signature-256": sent.signature})
    await fake.wait_until(lambda: {h.wamid for h in hooks} <= answered(fake), 60)


async def caught_up(redis: Redis, database_url: str) -> bool:
    """Every agent group has read and acknowledged every entry, and no turn is deferred."""
    for group, stream in AGENTS.items():
        try:
            last = (await redis.xinfo_stream(stream))["last-generated-id"]
            (info,) = [g for g in await redis.xinfo_groups(stream) if g["name"].decode() == group]
        except ResponseError:  # no such stream: nothing was ever published to it
            continue
        if info["pending"] or info["last-delivered-id"] != last:
            return False
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM pending_turns")).fetchone()
    return row is not None and row[0] == 0


async def drain(fake: TimedGraph, redis: Redis, database_url: str, messages: Sequence[Inbound],
                seconds: float) -> None:
    """Wait (up to `seconds`) until each learner's last message is answered and the stack is idle, so a
    late duplicate would show."""
    last = {m.learner: m.hook.wamid for m in messages}
    deadline = time.perf_counter() + seconds
    with contextlib.suppress(TimeoutError):
        await fake.wait_until(lambda: set(last.values()) <= answered(fake), seconds)
    with contextlib.suppress(AssertionError):
        await eventually(lambda: caught_up(redis, database_url), max(1.0, deadline - time.perf_counter()),
                         "the stack idle")


async def providers_of_turns(database_url: str, tag: str) -> dict[str, str]:
    """Which provider answered each turn, by the message id the answer replied to."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute(
            "SELECT m.provider_message_id, t.provider FROM turns t JOIN messages m ON m.id = t.reply_to "
            "WHERE m.provider_message_id LIKE %s", (f"wamid.{tag}%",))).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


@dataclass
class Fate:
    """What became of one inbound message (seconds from its scheduled send)."""

    visible_s: float | None = None  # the first answer or delay message that covers it
    answered_s: float | None = None
    told: bool = False  # sent after its learner's delay message, before the answer
    by: str | None = None  # the message id the covering answer replied to


@dataclass
class Stretch:
    """A learner's messages since their last answer, while following the sends."""

    covered: int = -1  # the learner's highest message seq answered so far
    told_at: float | None = None  # when this stretch's delay message arrived


def follow(messages: Sequence[Inbound], sent_at: Sequence[float], said: Sequence[tuple[float, str, str]]
           ) -> tuple[list[Fate], list[str]]:
    """Each message's fate and the duplicates, from the Graph sends in arrival order. An answer covers
    every unanswered message of its learner up to the one it replies to (a burst)."""
    fates = [Fate() for _ in messages]
    index = {m.hook.wamid: k for k, m in enumerate(messages)}
    mine: dict[int, list[int]] = {}
    for k, m in enumerate(messages):
        mine.setdefault(m.learner, []).append(k)
    stretches: dict[int, Stretch] = {}
    duplicates: list[str] = []
    for at, reply_to, text in said:
        if (which := index.get(reply_to)) is None:
            continue
        learner, seq = messages[which].learner, messages[which].seq
        stretch = stretches.setdefault(learner, Stretch())
        if seq <= stretch.covered:
            duplicates.append(f"{reply_to}: {'a delay message' if text.startswith(DELAYS) else 'answered'} "
                              "again after its answer")
        elif text.startswith(DELAYS) and stretch.told_at is not None:
            duplicates.append(f"{reply_to}: a second delay message before the answer")
        elif text.startswith(DELAYS):
            stretch.told_at = at
            for j in mine[learner][stretch.covered + 1:]:
                if sent_at[j] > at:
                    break
                fates[j].visible_s = fates[j].visible_s if fates[j].visible_s is not None else at - sent_at[j]
        else:
            for j in mine[learner][stretch.covered + 1:seq + 1]:
                fate = fates[j]
                fate.answered_s, fate.by = at - sent_at[j], reply_to
                fate.visible_s = fate.visible_s if fate.visible_s is not None else at - sent_at[j]
                fate.told = stretch.told_at is not None and sent_at[j] > stretch.told_at
            stretch.covered, stretch.told_at = seq, None
    for learner, stretch in stretches.items():  # still unanswered: told if the delay message came first
        for j in mine[learner][stretch.covered + 1:]:
            fates[j].told = stretch.told_at is not None and sent_at[j] > stretch.told_at
    return fates, duplicates


def acknowledged(fate: Fate, within_s: float) -> bool:
    """Answered or told "give me a moment" within `within_s`, or sent after being told."""
    return fate.told or (fate.visible_s is not None and fate.visible_s <= within_s)


@dataclass(frozen=True)
class Outcome:
    """Everything measured, for the report."""

    plan: list[Phase]
    messages: list[Inbound]
    samples: list[Sample]
    fates: list[Fate]
    duplicates: list[str]
    providers: Providers
    turns_by: dict[str, str]
    delays: Counter[int]  # delay messages per phase of the message they replied to


def phase_report(outcome: Outcome, k: int, options: OutageOptions) -> dict[str, Any]:
    """The figures of phase `k`."""
    phase, marks = outcome.plan[k], outcome.providers.marks
    ids = [j for j, m in enumerate(outcome.messages) if m.phase == k]
    fates = [outcome.fates[j] for j in ids]
    answered_in = [f.answered_s for f in fates if f.answered_s is not None]
    return {"seconds": phase.seconds, "groq": phase.groq, "anthropic": phase.anthropic, "messages": len(ids),
            "webhook_http": http_summary([outcome.samples[j] for j in ids]),
            "first_reply_or_delay": percentiles_ms([f.visible_s for f in fates if f.visible_s is not None]),
            "answer": percentiles_ms(answered_in),
            f"answered_within_{options.within_s:g}s": sum(1 for s in answered_in if s <= options.within_s),
            f"answered_or_told_within_{options.within_s:g}s": sum(acknowledged(f, options.within_s) for f in fates),
            "already_told": sum(1 for f in fates if f.told), "delay_messages": outcome.delays[k],
            "unanswered": len(ids) - len(answered_in),
            "answered_by": dict(Counter(outcome.turns_by.get(f.by or "", "?") for f in fates if f.by)),
            "llm_requests": outcome.providers.requests(k),
            "loadavg_at_end": marks[k + 1].loadavg}


def violations(outcome: Outcome, report: dict[str, dict[str, Any]], options: OutageOptions) -> list[str]:
    """What breaks the requirement (empty: it holds)."""
    found = []
    for name, figures in report.items():
        http = figures["webhook_http"]
        if (p99 := http["latency"]["p99_ms"]) is not None and p99 >= options.p99_limit_ms:
            found.append(f"{name}: webhook p99 {p99} ms ≥ {options.p99_limit_ms:g} ms")
        if http["errors"]:
            found.append(f"{name}: {http['errors']} webhook(s) not answered 200")
    late = [(m.hook.wamid, f.visible_s) for m, f in zip(outcome.messages, outcome.fates, strict=True)
            if not acknowledged(f, options.within_s)]
    if late:
        found.append(f"{len(late)} message(s) neither answered nor told within {options.within_s:g}s, e.g. "
                     + ", ".join(f"{w} ({'never' if s is None else f'{s:.1f}s'})" for w, s in late[:5]))
    if outcome.duplicates:
        found.append(f"{len(outcome.duplicates)} duplicate(s): " + "; ".join(outcome.duplicates[:5]))
    if unanswered := [m.hook.wamid for m, f in zip(outcome.messages, outcome.fates, strict=True)
                      if f.answered_s is None]:
        found.append(f"{len(unanswered)} message(s) unanswered after the drain: " + ", ".join(unanswered[:5]))
    return found


def report(outcome: Outcome, options: OutageOptions) -> dict[str, object]:
    """Per-phase figures, the webhook p99 against the healthy phase's, totals and violations."""
    phased = {phase.name: phase_report(outcome, k, options) for k, phase in enumerate(outcome.plan)}
    healthy = phased[outcome.plan[0].name]["webhook_http"]["latency"]["p99_ms"]
    for figures in phased.values():
        figures["webhook_p99_vs_healthy_p99"] = ratio(figures["webhook_http"]["latency"]["p99_ms"], healthy)
    back = outcome.providers.marks[len(outcome.plan) - 1].at  # when both came back
    recovered = [s.scheduled + f.answered_s - back for s, f, m in zip(outcome.samples, outcome.fates,
                                                                      outcome.messages, strict=True)
                 if f.answered_s is not None and m.phase < len(outcome.plan) - 1]
    return {"phases": phased, "llm_requests_during_drain": outcome.providers.requests(len(outcome.plan)),
            "messages": len(outcome.messages), "duplicates": len(outcome.duplicates),
            "unanswered": sum(1 for f in outcome.fates if f.answered_s is None),
            "last_earlier_message_answered_after_back_s": round(max(recovered), 2) if recovered else None,
            "violations": violations(outcome, phased, options)}


async def run(services: Services, options: OutageOptions) -> dict[str, object]:
    """Run the scenario against `services` (migrated); the figures and the violations found."""
    plan = phases(options)
    messages = inbounds(options, plan)
    redis = Redis.from_url(services.redis_url)
    result: dict[str, object] = {"what": __doc__.split("\n\n")[1] if __doc__ else "", "loadavg_before": loadavg(),
                                 "options": {"rate_per_s": options.rate, "learners": options.learners,
                                             "each_learner_every_s": options.learners / options.rate,
                                             "slow_s": options.slow_s, "llm_timeout_s": options.timeout_s or "default",
                                             "within_s": options.within_s, "drain_s": options.drain_s,
                                             "settings": options.env}}
    try:
        await redis.flushdb()
        async with serve_fake_llm() as (llm, llm_url), gated(llm_url) as gate, timed_graph() as (fake, graph_url), \
                charla_processes(services, graph_url, redis, stack_settings(options, llm_url, gate.url)) as stack, \
                httpx.AsyncClient(base_url=stack.url, timeout=60, limits=LIMITS) as client:
            await warm_up(client, fake, options.warmup)
            providers = Providers(llm, gate, options.slow_s)
            meter = CpuMeter({"benchmark (load, fakes)": os.getpid(), **stack.pids})
            samples = await drive(client, providers, plan, messages, options.rate)
            progress(f"outage: draining (up to {options.drain_s:g}s)")
            await drain(fake, redis, services.database_url, messages, options.drain_s)
            providers.mark()
            result["cpu_share_of_one_core"] = meter.shares()
            fates, duplicates = follow(messages, [s.scheduled for s in samples], fake.said)
            outcome = Outcome(plan, messages, samples, fates, duplicates, providers,
                              await providers_of_turns(services.database_url, options.tag),
                              delays_per_phase(messages, fake.said))
        result |= report(outcome, options)
        result["loadavg_after"] = loadavg()
        return result
    finally:
        await redis.flushdb()
        await redis.aclose()


def delays_per_phase(messages: Sequence[Inbound], said: Sequence[tuple[float, str, str]]) -> Counter[int]:
    """Delay messages sent, by the phase of the message each replied to."""
    phase_of = {m.hook.wamid: m.phase for m in messages}
    return Counter(phase_of[reply_to] for _, reply_to, text in said
                   if text.startswith(DELAYS) and reply_to in phase_of)
