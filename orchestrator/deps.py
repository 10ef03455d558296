"""The orchestrator's one FastAPI dependency: the process's long-lived clients, opened in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from charla.core.runtime import Resources


async def resources(request: Request) -> Resources:
    """The process's clients. Async on purpose: a plain `def` dependency runs in a worker thread per request."""
    res: Resources = request.app.state.res
    return res


Res = Annotated[Resources, Depends(resources)]
