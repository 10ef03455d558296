"""The conversation agent's background work: deferred turns re-published when their retry time comes, and the
models it answers with announced (and loaded) at start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from charla.core import constants as c
from charla.core.runtime import Resources
from charla.store import turns
from charla.tutor.findings import findings
from charla.tutor.llm import LocalModel
from charla.tutor.router import Router

log = logging.getLogger(__name__)


async def retry_deferred(res: Resources, stop: asyncio.Event) -> None:
    """Re-publish deferred turns when their retry time comes (any replica; each turn leased to one)."""
    every = min(5.0, res.settings.turn_retry_s / 3)
    while not stop.is_set():
        try:
            async with res.pool.connection() as conn, conn.transaction():
                due = await turns.due(conn, lease_s=max(60.0, res.settings.turn_retry_s * 4))
            for event in due:
                await res.bus.publish(c.STREAM_INBOUND, event)
        except Exception:
            log.exception("re-publishing deferred turns failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def announce(res: Resources, router: Router, stop: asyncio.Event) -> None:
    """Tell `charla status` which models this agent answers with, and load the checker and the offline
    model now (not on a learner's first turn)."""
    chain = {name: json.dumps({"model": router.providers[name].model, "demo": router.providers[name].demo,
                               "at": time.time()}) for name in router.providers}
    if chain:
        await res.redis.hset(c.LLM_PROVIDERS_KEY, mapping=chain)  # type: ignore[arg-type]
    await asyncio.to_thread(findings, ["Hola."], res.settings.default_target_language)  # load its NLP data
    local = router.providers.get("local")
    if isinstance(local, LocalModel):
        await asyncio.to_thread(local.load)
        log.info("offline demo model loaded: %s", local.path.name)
