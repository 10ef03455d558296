"""Benchmark T: the tutoring turn's own overhead, and the offline model's speed.

Overhead: signed webhooks offered open-loop at 20 and 100 turns/s (500 learners, so no bursts merge),
through the orchestrator, the conversation agent (session, profile, router, the real groq SDK against a
fake Groq in this process that answers at once, structured-output validation, turn record), the outbox
and the sender, to the fake Graph API. Latency counts from each webhook's scheduled send time to the
send request's arrival. Baseline in the same run: a bare FastAPI endpoint's round trip at the same rate.

Offline model: SmolLM2-135M-Instruct through llama-cpp-python: load time, time to the first reply,
and generated tokens per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.load import loadavg, open_loop, percentiles_ms, progress, ratio
from bench.services import Services
from bench.stack import bare_server
from bench.webhook import HEADERS, LIMITS, WebhookOptions, baseline_body, measure_charla
from charla.tutor.llm import LocalModel, Message, Prompt, smollm2_path

PROMPTS = ("Hola, ¿cómo estás? Ayer fui al mercado y compré manzanas.",
           "I goed to the cinema yesterday with my friends.",
           "¿Me explicas cuándo se usa 'ser' y cuándo 'estar'?")


@dataclass(frozen=True)
class TurnOptions:
    rates: tuple[float, ...] = (20.0, 100.0)
    seconds: float = 10.0
    model_replies: int = 3
    max_tokens: int = 96


async def overhead(services: Services, rate: float, seconds: float) -> dict[str, object]:
    progress(f"turn: {rate:g} turns/s for {seconds:g}s through the whole stack (fake Groq answers at once)")
    options = WebhookOptions(rate=rate, seconds=seconds, learners=500, warmup=20, drain_s=60.0, tag=f"T{rate:g}")
    charla = await measure_charla(services, options)
    baseline = await bare_round_trip(rate, options.total)
    e2e: dict[str, float | None] = charla["end_to_end"]  # type: ignore[assignment]
    return {"offered_per_s": rate, "turns": options.total, "replied": charla["replied"], "lost": charla["lost"],
            "duplicated": charla["duplicated"], "webhook_to_send_request": e2e,
            "baseline_bare_round_trip": baseline,
            "ratios": {"p50_vs_baseline_p50": ratio(e2e.get("p50_ms"), baseline.get("p50_ms")),
                       "p99_vs_baseline_p99": ratio(e2e.get("p99_ms"), baseline.get("p99_ms"))},
            "targets_met": {"p50_le_15ms": _le(e2e.get("p50_ms"), 15.0), "p99_le_50ms": _le(e2e.get("p99_ms"), 50.0)},
            "cpu": charla.get("cpu_share_of_one_core"), "cpu_ms_per_turn": cpu_ms_per_turn(charla, options.total),
            "redis_commands_per_turn": charla.get("redis_commands_per_event"),
            "dead_letters": charla["dead_letters"]}


def cpu_ms_per_turn(charla: dict[str, object], turns: int) -> dict[str, float]:
    """Each process's CPU milliseconds per offered turn over the metered window (what to size with: it does
    not depend on the machine's load the way latencies do)."""
    used = charla.get("cpu_seconds")
    if not isinstance(used, dict) or not turns:
        return {}
    return {name: round(seconds * 1000 / turns, 2) for name, seconds in used.items()}


def _le(value: object, limit: float) -> bool | None:
    return None if not isinstance(value, int | float) else value <= limit


async def bare_round_trip(rate: float, total: int) -> dict[str, float | None]:
    body = baseline_body()
    async with bare_server() as server, httpx.AsyncClient(base_url=server.url, timeout=30, limits=LIMITS) as client:

        async def send(_: int) -> int:
            return (await client.post("/echo", content=body, headers=HEADERS)).status_code

        samples = await open_loop(send, rate=rate, total=total)
    return percentiles_ms([s.finished - s.scheduled for s in samples])


async def offline_model(options: TurnOptions) -> dict[str, object]:
    progress("turn: the offline demo model (SmolLM2-135M via llama-cpp-python)")
    model = LocalModel(smollm2_path())
    started = time.perf_counter()
    model.load()
    loaded_s = time.perf_counter() - started
    replies = []
    for text in PROMPTS[: options.model_replies]:
        prompt = Prompt(system="You are Charla, a friendly Spanish tutor. Correct mistakes briefly.",
                        messages=[Message("user", text)], max_tokens=options.max_tokens, json=False)
        replies.append(await model.complete(prompt))
    tokens = sum(r.output_tokens for r in replies)
    seconds = sum(r.latency_ms for r in replies) / 1000
    return {"model": model.model, "file_bytes": model.path.stat().st_size, "load_s": round(loaded_s, 3),
            "time_to_first_reply_s": round(loaded_s + replies[0].latency_ms / 1000, 3),
            "first_reply_tokens": replies[0].output_tokens, "replies": len(replies), "generated_tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None, "threads": model.threads}


async def run(services: Services, options: TurnOptions) -> dict[str, object]:
    before = loadavg()
    result: dict[str, object] = {"what": __doc__.split("\n\n")[1] if __doc__ else "", "loadavg_before": before}
    result["overhead"] = [await overhead(services, rate, options.seconds) for rate in options.rates]
    result["offline_model"] = await offline_model(options)
    result["loadavg_after"] = loadavg()
    return result
