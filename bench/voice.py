"""Benchmark V: voice.

- STT real-time factor (transcription seconds / audio seconds) for 10, 30 and 60 s notes: tiny.en on
  English (Piper) and base on Spanish (espeak-ng). Baseline in the same run: decoding the same note (PyAV).
- WER on the synthetic clean set and with white noise at 10 and 5 dB SNR, with and without noise
  reduction (noisereduce), so the default (off) stays evidence-based.
- Read-aloud scoring and WER per Spanish voice (bench/readaloud.py).
- End-to-end voice turn for a 30 s note, model generation excluded (a fake Groq answers at once): signed
  webhook → media from a fake Graph API → decode → transcribe → tutoring turn → reply sent, through
  `charla serve` and one process per agent.
- Text turn latency while the voice queue is saturated, against the same stack idle and against the same
  stack beside one busy loop per core at the lowest priority (SCHED_IDLE, like the voice agent): the
  machine's own cost of having its CPUs busy, which no scheduling policy removes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, replace

import httpx
import numpy as np
from redis.asyncio import Redis

from bench import dictation, readaloud
from bench.load import loadavg, percentiles_ms, progress, ratio
from bench.services import Services
from bench.stack import TimedGraph, charla_stack, timed_graph
from bench.webhook import LIMITS, WebhookOptions, measure_charla
from charla.channels import media
from charla.channels.console import learner_key
from charla.core import constants as c
from charla.core.bus import Bus, BusConfig
from charla.core.events import Identity, InboundMessage
from tests.support.payloads import sign
from tests.support.voice_kit import (
    ENGLISH,
    SPANISH,
    STORY,
    note,
    silence,
    speak,
    transcriber,
    voice_webhook,
    wer,
    with_noise,
)
from voice.audio import RATE, Samples, decode

OGG = "audio/ogg; codecs=opus"
SPIN = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True:\n    pass\n"


@dataclass(frozen=True)
class VoiceOptions:
    lengths: tuple[int, ...] = (10, 30, 60)
    e2e_notes: int = 5
    text_rate: float = 20.0
    text_seconds: float = 10.0
    flood: int = 24  # 30 s notes queued for the voice agent while text is measured


def sentences(language: str, seconds: float) -> Samples:
    """Speech of about `seconds`: the story's sentences in order, with short pauses, cut at `seconds`."""
    return np.concatenate(_spoken(language, seconds)[0])[: int(seconds * RATE)]


def said(language: str, seconds: float) -> str:
    """The words `sentences(language, seconds)` speaks (the last sentence may be cut short)."""
    return " ".join(_spoken(language, seconds)[1])


@functools.cache
def _spoken(language: str, seconds: float) -> tuple[list[Samples], list[str]]:
    parts: list[Samples] = []
    texts: list[str] = []
    total = 0.0
    while total < seconds:
        text = STORY[language][len(texts) % len(STORY[language])]
        spoken = speak(text, language)
        parts += [spoken, silence(0.6)]
        texts.append(text)
        total += len(spoken) / RATE + 0.6
    return parts, texts


def rtf() -> dict[str, object]:
    stt, out = transcriber(), dict[str, object]()
    for language in ("en", "es"):
        for seconds in VoiceOptions().lengths:
            progress(f"voice: real-time factor, {seconds} s of {language}")
            data = note(sentences(language, seconds))
            started = time.perf_counter()
            samples = decode(data, max_seconds=600).samples
            decode_s = time.perf_counter() - started
            runs = []
            for _ in range(2):
                started = time.perf_counter()
                heard = stt.transcribe(samples, language)
                runs.append(time.perf_counter() - started)
            best = min(runs)
            out[f"{language}_{seconds}s"] = {
                "model": heard.model, "transcribe_s": round(best, 3), "rtf": round(best / seconds, 4),
                "baseline_decode_s": round(decode_s, 4), "vs_decode": ratio(best, decode_s),
                "confidence": round(heard.confidence, 3)}
    return out


def word_error_rates() -> dict[str, object]:
    stt = transcriber()
    out: dict[str, object] = {}
    for language, pool in (("en", ENGLISH), ("es", SPANISH)):
        clean = [speak(sentence, language) for sentence in pool]
        for condition, snr in (("clean", None), ("noise_10db", 10.0), ("noise_5db", 5.0)):
            for reduction in (False, True):
                progress(f"voice: WER {language} {condition} noise reduction {'on' if reduction else 'off'}")
                stt.config = replace(stt.config, noise_reduction=reduction)
                said = [decode(note(s if snr is None else with_noise(s, snr)), max_seconds=60).samples for s in clean]
                heard = [stt.transcribe(samples, language).text for samples in said]
                out[f"{language}_{condition}_{'nr' if reduction else 'plain'}"] = round(wer(pool, heard), 3)
        stt.config = replace(stt.config, noise_reduction=False)
    return out


async def end_to_end(services: Services, notes: int) -> dict[str, object]:
    """A 30 s Spanish note through the whole stack, one at a time (the multilingual model: the slow path)."""
    audio = note(sentences("es", 30))
    redis = Redis.from_url(services.redis_url)
    try:
        await redis.flushdb()
        async with timed_graph() as (fake, graph_url), charla_stack(services, graph_url, redis, voice=True) as stack, \
                httpx.AsyncClient(base_url=stack.url, timeout=30, limits=LIMITS) as client:
            latencies, errors = [], []
            for n in range(notes + 1):  # the first warms the models' caches
                progress(f"voice: end-to-end 30 s note {n + 1}/{notes + 1}")
                media_id, wamid = f"9{n:06d}", f"wamid.e2e{n}"  # Meta media ids are numeric
                fake.media[media_id] = (audio, OGG)
                fake.expect([wamid])
                body = voice_webhook(f"3470000{n:04d}", wamid, media_id)
                started = time.perf_counter()
                await client.post("/webhooks/whatsapp", content=body,
                                  headers={"x-hub-signature-256": sign(body), "content-type": "application/json"})
                async with asyncio.timeout(120):
                    await fake.all_arrived.wait()
                if n:
                    latencies.append(fake.arrivals[wamid][0] - started)
                    errors.append(_heard_error(fake, wamid, said("es", 30)))
        summary = percentiles_ms(latencies)
        p50 = summary.get("p50_ms")
        return {"note_s": 30, "notes": notes, "webhook_to_reply": summary, "quoted_transcript_wer": max(errors),
                "target_p50_le_3s_met": None if p50 is None else p50 <= 3000, "median_s": statistics.median(latencies)}
    finally:
        await redis.flushdb()
        await redis.aclose()


def _heard_error(fake: TimedGraph, wamid: str, spoken: str) -> float:
    """WER of the transcript the first reply quotes; raises when the reply quotes nothing (the note was not
    heard: a failure path must never pass for a fast voice turn)."""
    first = next(text for _, reply_to, text in fake.said if reply_to == wamid)
    quoted = re.search(r"“(.*?)”", first, re.S)
    if quoted is None:
        raise RuntimeError(f"the reply to voice note {wamid} quotes no transcript: {first[:200]!r}")
    return round(wer([spoken], [quoted.group(1).removesuffix("…")]), 3)


async def text_under_voice_load(services: Services, options: VoiceOptions) -> dict[str, object]:
    text = WebhookOptions(rate=options.text_rate, seconds=options.text_seconds, learners=500, warmup=20,
                          drain_s=60.0, tag="VI")
    progress(f"voice: text turns at {options.text_rate:g}/s, voice idle")
    idle = await measure_charla(services, text, busy=_idle)
    audio = note(sentences("es", 30))

    async def flood(redis: Redis) -> dict[str, object]:
        progress(f"voice: queueing {options.flood} 30 s notes for the voice agent")
        for n in range(options.flood):
            handle = f"flood{n}"
            await media.keep(redis, f"in:{handle}", audio)
            identity = Identity(wa_id=handle)
            await _publish(redis, InboundMessage(learner=learner_key(handle), provider="console", message_id=handle,
                                                 identity=identity, kind="audio",
                                                 payload={"message": {"audio": {"id": handle}}}))
        return {"voice_queue_at_start": options.flood}

    progress(f"voice: text turns at {options.text_rate:g}/s, voice queue saturated")
    busy = await measure_charla(services, replace(text, tag="VB"), busy=flood)
    progress(f"voice: text turns at {options.text_rate:g}/s, {os.cpu_count()} idle-priority busy loops instead")
    hogs: list[asyncio.subprocess.Process] = []

    async def spin(redis: Redis) -> dict[str, object]:
        for _ in range(os.cpu_count() or 1):
            hogs.append(await asyncio.create_subprocess_exec(sys.executable, "-c", SPIN))
        return {"busy_loops": len(hogs)}

    try:
        spun = await measure_charla(services, replace(text, tag="VS"), busy=spin)
    finally:
        for hog in hogs:
            hog.kill()
            await hog.wait()
    idle_p99, busy_p99, spun_p99 = _p99(idle), _p99(busy), _p99(spun)
    return {"text_rate_per_s": options.text_rate, "idle": _brief(idle), "voice_saturated": _brief(busy),
            "busy_loops_baseline": _brief(spun),
            "p99_ratio_busy_vs_idle": ratio(busy_p99, idle_p99),
            "p99_ratio_busy_loops_vs_idle": ratio(spun_p99, idle_p99),
            "p99_ratio_busy_vs_busy_loops": ratio(busy_p99, spun_p99),
            "target_within_20pct_met": None if not (idle_p99 and busy_p99) else busy_p99 <= 1.2 * idle_p99}


async def _idle(redis: Redis) -> dict[str, object]:
    return {}


async def _publish(redis: Redis, event: InboundMessage) -> None:
    await Bus(redis, BusConfig()).publish(c.STREAM_VOICE, event)


def _p99(run: dict[str, object]) -> float | None:
    e2e = run.get("end_to_end")
    value = e2e.get("p99_ms") if isinstance(e2e, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _brief(run: dict[str, object]) -> dict[str, object]:
    keys = ("replied", "lost", "duplicated", "end_to_end", "cpu_share_of_one_core", "voice_queue_at_start",
            "busy_loops")
    return {k: run[k] for k in keys if k in run}


async def run(services: Services, quick: bool = False) -> dict[str, object]:
    options = VoiceOptions(e2e_notes=2, text_seconds=4.0, flood=8) if quick else VoiceOptions()
    started_load = loadavg()
    result: dict[str, object] = {"loadavg_at_start": started_load}
    result["stt_real_time_factor"] = await asyncio.to_thread(rtf)
    result["wer"] = await asyncio.to_thread(word_error_rates)
    result["dictation_grading"] = dictation.run()
    result["read_aloud"] = await asyncio.to_thread(readaloud.run, readaloud.MODELS, quick)
    result["end_to_end_30s_note"] = await end_to_end(services, options.e2e_notes)
    result["text_turns_while_voice_busy"] = await text_under_voice_load(services, options)
    result["loadavg_at_end"] = loadavg()
    return result
