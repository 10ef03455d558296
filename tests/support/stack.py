"""Run Charla's real processes (orchestrator, agents, supervisor) as subprocesses for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field

import httpx

from tests.support.helpers import eventually
from tests.support.payloads import APP_SECRET, sign, text_webhook
from tests.support.servers import GRAPH_TOKEN


def stack_env(*, db: str, redis_url: str, graph_url: str, port: int, home: str, **extra: str) -> dict[str, str]:
    """Environment for Charla processes wired to the test services and the fake Graph API (the onboarding
    offer of the level test off: the suites that count replies expect plain ones)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {**keep, "DATABASE_URL": db, "REDIS_URL": redis_url, "CHARLA_HOME": home, "CHARLA_PORT": str(port),
            "WHATSAPP_PROVIDER": "meta", "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": "106540352242922", "WHATSAPP_API_BASE_URL": graph_url,
            "CHARLA_BUS_LEASE_MS": "2000", "CHARLA_HEARTBEAT_S": "0.5", "CHARLA_LOG_LEVEL": "WARNING",
            "CHARLA_PLACEMENT_OFFER": "false", **extra}


@dataclass
class Proc:
    """One `python -m charla …` subprocess."""

    args: list[str]
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    kills: int = field(default=0)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "charla", *self.args, env=self.env,
                                                         stdin=asyncio.subprocess.DEVNULL)

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, nothing flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.kills += 1

    async def stop(self) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc and self.proc.returncode is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(40):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


async def wait_healthy(base_url: str, seconds: float = 30) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:

        async def up() -> bool:
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, seconds, "orchestrator healthy")


def wamid(learner: int, n: int) -> str:
    return f"wamid.L{learner:02d}.{n:04d}"


def wa_id(learner: int) -> str:
    return f"3460000{learner:04d}"


async def post_conversations(base_url: str, learners: int, per_learner: int) -> None:
    """Each learner posts its messages one after another (as a phone would); learners run in parallel."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def learner(i: int) -> None:
            for n in range(per_learner):
                body = text_webhook(wa_id(i), wamid(i, n), f"L{i} message {n}")
                response = await client.post("/webhooks/whatsapp", content=body,
                                             headers={"x-hub-signature-256": sign(body),
                                                      "content-type": "application/json"})
                assert response.status_code == 200, response.text

        await asyncio.gather(*(learner(i) for i in range(learners)))
