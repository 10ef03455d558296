"""What `charla status` reports: supervised processes, heartbeats and stream health."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import psycopg

from charla.core import constants as c
from charla.core.bus import Bus
from charla.core.redis_client import connect, get_each
from charla.core.runtime import bus_config, resolve_urls
from charla.core.settings import Settings
from charla.store import turns
from charla.tutor import offline

STREAMS = tuple(c.CONSUMER_GROUPS)


async def collect(settings: Settings) -> dict[str, Any]:
    redis = _client(settings)
    try:
        raw: dict[Any, Any] = await redis.hgetall(c.PROCS_KEY)
        procs = {k.decode(): json.loads(v) for k, v in raw.items()}
        keys = [key async for key in redis.scan_iter(f"{c.PREFIX}:hb:*")]  # every primary's, on a cluster
        beats = [json.loads(body or "{}") for body in await get_each(redis, keys)]
        bus = Bus(redis, bus_config(settings))
        streams = [asdict(await bus.stats(stream)) for stream in STREAMS]
        raw_alerts: dict[Any, Any] = await redis.hgetall(c.ALERTS_KEY)
        llm = {"providers": _decoded(await redis.hgetall(c.LLM_PROVIDERS_KEY)),
               "circuits": _decoded(await redis.hgetall(c.LLM_CIRCUITS_KEY)), "share_24h": await _share(settings)}
    finally:
        await redis.aclose()
    alerts = {k.decode(): json.loads(v) for k, v in raw_alerts.items()}
    return {"provider": settings.whatsapp_provider, "processes": procs, "heartbeats": beats, "streams": streams,
            "llm": llm, "alerts": alerts}


def _decoded(raw: dict[Any, Any]) -> dict[str, Any]:
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def _share(settings: Settings) -> dict[str, dict[str, float]]:
    """Turns, tokens and cost per model provider over the last 24 hours (empty if PostgreSQL is down)."""
    try:
        async with await psycopg.AsyncConnection.connect(resolve_urls(settings).database_url,
                                                         connect_timeout=3) as conn:
            return await turns.provider_share(conn)
    except psycopg.Error:
        return {}


def render(report: dict[str, Any], now: float) -> str:
    lines = [f"provider: {report['provider']}", "", "PROCESS        STATE    PID      RESTARTS"]
    for name, proc in sorted(report["processes"].items()):
        lines.append(f"{name:<14} {proc['state']:<8} {proc['pid'] or '-'!s:<8} {proc['restarts']}")
    if not report["processes"]:
        lines.append("(no supervised stack running)")
    lines += ["", "CONSUMER                  AGE   LAST BEAT  HANDLED  FAILED  DEAD  IN FLIGHT"]
    for beat in sorted(report["heartbeats"], key=lambda b: str(b.get("consumer"))):
        age = _ago(now - float(beat.get("started", now)))
        lines.append(f"{beat.get('consumer', '?')!s:<25} {age:<5} {_ago(now - float(beat.get('at', now))):<10} "
                     f"{beat.get('handled', '-')!s:<8} {beat.get('failed', '-')!s:<7} "
                     f"{beat.get('dead_lettered', '-')!s:<5} {beat.get('in_flight', '-')}")
    lines += ["", "STREAM                   LENGTH   GROUP          PENDING  LAG      DEAD"]
    for stream in report["streams"]:
        short = stream["stream"].removeprefix(f"{c.PREFIX}:stream:")
        for group in stream["groups"] or [{"name": "-", "pending": "-", "lag": "-"}]:
            lines.append(f"{short:<24} {stream['length']:<8} {group['name']:<14} {group['pending']!s:<8} "
                         f"{group['lag']!s:<8} {stream['dead_letters']}")
    lines += ["", *_llm_lines(report.get("llm", {}))]
    if report["alerts"]:
        lines += ["", "ALERTS (clear with `charla status --clear-alerts` once fixed)"]
        for code, alert in sorted(report["alerts"].items()):
            lines.append(f"  code {code}: {alert.get('message')} ({_ago(now - float(alert.get('at', now)))} ago)")
    return "\n".join(lines)


def _llm_lines(llm: dict[str, Any]) -> list[str]:
    providers = llm.get("providers", {})
    if not providers:
        return ["LLM: (no conversation agent has started yet)"]
    lines = ["LLM PROVIDER   MODEL                          CIRCUIT   TURNS 24H  SHARE  COST 24H"]
    for name, info in sorted(providers.items()):
        share = llm.get("share_24h", {}).get(name, {})
        circuit = llm.get("circuits", {}).get(name, {}).get("state", "closed")
        model = str(info.get("model", "")) + ("  (DEMO MODEL: cannot tutor)" if info.get("demo") else "")
        lines.append(f"{name:<14} {model:<30} {circuit:<9} {share.get('turns', 0)!s:<10} "
                     f"{share.get('share', 0.0):>5.0%}  ${share.get('cost_usd', 0.0):.4f}")
    if all(info.get("demo") for info in providers.values()):
        lines += ["", *offline.MODE]
    return lines


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"





async def clear_alerts(settings: Settings) -> int:
    redis = _client(settings)
    try:
        return int(await redis.delete(c.ALERTS_KEY))
    finally:
        await redis.aclose()


def _client(settings: Settings) -> Any:
    return connect(resolve_urls(settings).redis_url, cluster=settings.redis_cluster, max_connections=4)
