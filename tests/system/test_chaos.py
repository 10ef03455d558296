"""The chaos run, smaller (the full one is `make reliability`): learners write text and voice notes while every
agent is SIGKILLed, Redis and PostgreSQL restarted; nothing may be lost, doubled or left pending."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import chaos
from bench.report import render
from bench.services import started_services

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
