"""The chaos run, smaller (the full one is `make reliability`): learners write text and voice notes while every
agent is SIGKILLed, Redis and PostgreSQL restarted; nothing may be lost, doubled or left pending."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import chaos
from bench.report import render
from bench.services import prepare, started_services
from tests.support.payloads import text_webhook
from tests.support.servers import Answer

pytestmark = pytest.mark.timeout(600)
ARTIFACTS = Path(__file__).parents[1] / "artifacts"


async def test_agents_killed_and_servers_restarted_lose_and_double_nothing() -> None:
    options = chaos.ChaosOptions(learners=8, messages=15, voice_every=5, kills=1, pause_s=0.4, drain_s=180)
    with started_services() as services:
        result = await chaos.run(services, options)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "chaos.json").write_text(json.dumps(result, indent=2))
    assert result["violations"] == []
    assert result["accepted"] == 8 * 15
    assert sum(result["faults"]["sigkills"].values()) == 4
    assert (result["faults"]["redis_restarts"], result["faults"]["postgres_restarts"]) == (1, 1)
    assert result["audit"]["voice_lines_echoed"] >= 20  # the voice notes were heard and answered too
    report = render({"started_at": "now", "quick": True, "total_seconds": 60, "loadavg_at_start": [0, 0, 0],
                     "loadavg_at_end": [0, 0, 0], "chaos": result})
    assert "| Chaos: 8 learners × 15 text + voice | 120 | 4 SIGKILLs" in report
    assert "Violations: none." in report


async def test_a_sender_killed_after_meta_accepted_a_reply_does_not_send_it_again() -> None:
    """The sender is SIGKILLed while the Graph API accepts its reply (the reply is Meta's, the sender never
    hears back). Restarted, it finds the send begun and unrecorded, and Meta's `sent` status of it (the fake
    reports each accepted message, as Meta does): the reply is recorded, not sent again."""
    learner = "34699000001"
    with started_services() as services:
        await prepare(services)
        async with chaos.chaos_stack(services, 100) as (graph, procs, url):
            killed = asyncio.Event()

            async def kill_the_sender(body: dict[str, Any], wamid: str) -> Answer | None:
                if not killed.is_set():
                    killed.set()
                    await procs["sender"].kill()
                return None

            graph.before_answer = kill_the_sender
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                ledger = chaos.Ledger()
                assert await chaos.post_until_accepted(client, ledger, text_webhook(learner, "wamid.k1", "hola"),
                                                       "wamid.k1")
                await asyncio.wait_for(killed.wait(), 60)
                await procs["sender"].start()
                assert await chaos.post_until_accepted(client, ledger, text_webhook(learner, "wamid.k2", "adiós"),
                                                       "wamid.k2")
                await graph.wait_until(lambda: len(graph.sent) >= 2, 90)  # in order: the first was settled
            quoted = graph.replies_to()
    assert quoted == ["wamid.k1", "wamid.k2"]
    assert chaos.echoed_lines(str(graph.sent[0]["text"]["body"])) == ["hola"]
