"""The webhook baseline server: a bare FastAPI endpoint that parses a JSON body and answers {"ok": true}.

Usage: python -m bench.bare PORT  (uvicorn with uvloop + httptools, access log off, like `charla serve`)
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> JSONResponse:
    """Read and parse the body (as the webhook does), then acknowledge."""
    orjson.loads(await request.body())
    return JSONResponse({"ok": True})


@app.get("/healthz")
async def healthz() -> JSONResponse:
    """Readiness probe for the benchmark."""
    return JSONResponse({"status": "ok"})


def main(argv: list[str]) -> None:
    """Serve the app on 127.0.0.1:PORT until SIGTERM."""
    uvicorn.run(app, host="127.0.0.1", port=int(argv[0]), loop="uvloop", http="httptools", access_log=False,
                log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
