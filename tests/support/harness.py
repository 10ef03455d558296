"""An in-process Charla: the orchestrator served on loopback, the agents as workers in this event loop,
a fake Graph API, all against the test's real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from agents.registry import AGENTS
from charla.core.runtime import Resources, open_resources
from charla.core.worker import Worker
from orchestrator.app import create_app
from tests.support.fake_llm import FakeLLM, llm_env, serve_fake_llm
from tests.support.helpers import make_settings
from tests.support.payloads import APP_SECRET, sign
from tests.support.servers import FakeGraph, serve, serve_fake_graph


@dataclass
class Stack:
    http: httpx.AsyncClient
    fake: FakeGraph
    res: Resources
    llm: FakeLLM

    async def post(self, body: bytes) -> httpx.Response:
        return await self.http.post("/webhooks/whatsapp", content=body,
                                    headers={"x-hub-signature-256": sign(body), "content-type": "application/json"})


def stack_settings(db: str, redis_url: str, graph_url: str, **env: str) -> dict[str, str]:
    return {"DATABASE_URL": db, "REDIS_URL": redis_url, "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": "tok", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
            "WHATSAPP_API_BASE_URL": graph_url, "CHARLA_BUS_LEASE_MS": "2000",
            "CHARLA_PLACEMENT_OFFER": "false", **env}  # the tests that expect it turn the onboarding offer on


@asynccontextmanager
async def running(*workers: Worker, background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = ()
                  ) -> AsyncIterator[None]:
    """The workers (and agents' background loops) run until the block ends, then stop gracefully."""
    stop = asyncio.Event()
    tasks = [*(asyncio.create_task(w.run(stop, drain_timeout=5)) for w in workers),
             *(asyncio.create_task(loop(stop)) for loop in background)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def agents_running(res: Resources, *, voice: bool = False) -> AbstractAsyncContextManager[None]:
    """Every registered agent's workers, as one consumer each, until the block ends. The voice agent (its
    models take seconds to load) only when asked for."""
    workers = [Worker(res.bus, stream=stream, group=spec.name, consumer=f"{spec.name}-test", handler=handler,
                      block_ms=100)
               for spec in AGENTS.values() if voice or spec.name != "voice"
               for stream, handler in spec.handlers(res).items()]
    return running(*workers, background=res.background)


def running_stack(db: str, redis_url: str, fake_and_url: tuple[FakeGraph, str] | None = None,
                  llm: FakeLLM | None = None, **env: str) -> AbstractAsyncContextManager[Stack]:
    """Charla in process against the test services, a fake Graph API and a fake Groq + Anthropic."""
    return _stack(db, redis_url, fake_and_url, llm, False, env)


def running_voice_stack(db: str, redis_url: str, **env: str) -> AbstractAsyncContextManager[Stack]:
    """The same with the voice agent (its models load in a few seconds) and nobody niced: in process, its
    listening threads would be the test's own, waiting behind everything else the test runs."""
    return _stack(db, redis_url, None, None, True, {"CHARLA_VOICE_NICE": "0", "CHARLA_VOICE_IDLE": "false", **env})


@asynccontextmanager
async def _stack(db: str, redis_url: str, fake_and_url: tuple[FakeGraph, str] | None, llm: FakeLLM | None,
                 voice: bool, env: dict[str, str]) -> AsyncIterator[Stack]:
    async with _graph(fake_and_url) as (fake, graph_url), serve_fake_llm(llm) as (llm, llm_url):
        settings = make_settings(**stack_settings(db, redis_url, graph_url, **{**llm_env(llm_url), **env}))
        async with open_resources(settings, pool_size=4) as res, agents_running(res, voice=voice), \
                serve(create_app(settings), lifespan="on") as url, httpx.AsyncClient(base_url=url) as http:
            yield Stack(http, fake, res, llm)


@asynccontextmanager
async def _graph(given: tuple[FakeGraph, str] | None) -> AsyncIterator[tuple[FakeGraph, str]]:
    if given is not None:
        yield given
        return
    async with serve_fake_graph() as served:
        yield served
