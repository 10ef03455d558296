"""A local stand-in for Groq, Anthropic and OpenAI-compatible servers, speaking their wire formats so the
real SDKs can be pointed at it (`base_url`). Successful answers are the fixtures' bodies with the content
replaced; errors replay the fixtures (`retry-after-ms: 1` added so the SDKs' own retries stay fast)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from charla.cli.services import free_port
from charla.tutor import insights
from tests.support.payloads import fixture_json
from tests.support.servers import serve

# provider -> the request body -> the assistant's content
Replier = Callable[[str, dict[str, Any]], str]
OVERLOADED_529 = {"status": 529, "headers": {"content-type": "application/json"},
                  "body": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}}


def last_user_text(request: dict[str, Any]) -> str:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    content = users[-1]["content"] if users else ""
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def echo(provider: str, request: dict[str, Any]) -> str:
    """The default answer: a valid structured reply echoing what the learner wrote (for the memory agent's
    request, a valid summary of it)."""
    if system_of(request).startswith(insights.SYSTEM[:40]):
        return json.dumps({"summary": "Practised: " + last_user_text(request).split("Conversation:")[-1][:200]})
    return json.dumps({"reply": f"Echo: {last_user_text(request)}"}, ensure_ascii=False)


def system_of(request: dict[str, Any]) -> str:
    """The system prompt, whichever wire format carried it."""
    if isinstance(request.get("system"), str):
        return str(request["system"])
    first = (request.get("messages") or [{}])[0]
    return str(first.get("content", "")) if first.get("role") == "system" else ""


def error(name: str, status: int | None = None) -> dict[str, Any]:
    """A fixture error reply (optionally under another status, e.g. Groq's 413 from its 429 body)."""
    replay = copy.deepcopy(fixture_json(name))
    if status is not None:
        replay["status"] = status
    return dict(replay)


@dataclass
class FakeLLM:
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"groq": [], "anthropic": [],
                                                                               "openai": []})
    script: dict[str, list[dict[str, Any] | str]] = field(default_factory=dict)  # provider -> next replies
    down: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider -> error replayed every time
    delay_s: dict[str, float] = field(default_factory=dict)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # learner text -> answer once this is set
    replier: Replier = echo
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def calls(self, provider: str) -> int:
        return len(self.requests[provider])

    async def wait_for(self, provider: str, count: int, seconds: float) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: self.calls(provider) >= count)

    async def _answer(self, provider: str, request: Request) -> JSONResponse:
        body = await request.json()
        async with self._changed:
            self.requests[provider].append(body)
            self._changed.notify_all()
        for text, release in self.hold.items():
            if text in last_user_text(body):
                await release.wait()
        if self.delay_s.get(provider):
            await asyncio.sleep(self.delay_s[provider])  # a slow provider, as the SDK's timeout sees it
        queued = self.script.get(provider) or []
        reply = queued.pop(0) if queued else self.down.get(provider)
        if isinstance(reply, dict):
            headers = {**reply.get("headers", {}), "retry-after-ms": "1"}
            headers.pop("content-type", None)
            return JSONResponse(reply["body"], status_code=reply["status"], headers=headers)
        content = reply if isinstance(reply, str) else self.replier(provider, body)
        return JSONResponse(_success(provider, body, content))

    async def groq(self, request: Request) -> JSONResponse:
        return await self._answer("groq", request)

    async def openai(self, request: Request) -> JSONResponse:
        return await self._answer("openai", request)

    async def anthropic(self, request: Request) -> JSONResponse:
        return await self._answer("anthropic", request)


def _success(provider: str, request: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_tokens = len(json.dumps(request)) // 4
    if provider == "anthropic":
        body = copy.deepcopy(fixture_json("anthropic_message_200.json")["body"])
        body["content"] = [{"type": "text", "text": content, "citations": None}]
        body["model"] = request.get("model", body["model"])
        body["usage"].update(input_tokens=prompt_tokens, output_tokens=len(content) // 4 + 1)
        return dict(body)
    body = copy.deepcopy(fixture_json("groq_chat_completion_200.json")["body"])
    body["choices"][0]["message"]["content"] = content
    body["model"] = request.get("model", body["model"])
    body["usage"].update(prompt_tokens=prompt_tokens, completion_tokens=len(content) // 4 + 1,
                         total_tokens=prompt_tokens + len(content) // 4 + 1)
    return dict(body)


@asynccontextmanager
async def serve_fake_llm(fake: FakeLLM | None = None, host: str = "127.0.0.1") -> AsyncIterator[tuple[FakeLLM, str]]:
    """Run a FakeLLM; yields it and its base URL. Groq's SDK adds `/openai/v1/…` to GROQ_BASE_URL,
    Anthropic's `/v1/messages` to ANTHROPIC_BASE_URL; OPENAI_BASE_URL is this URL + `/v1`."""
    fake = fake or FakeLLM()
    app = Starlette(routes=[Route("/openai/v1/chat/completions", fake.groq, methods=["POST"]),
                            Route("/v1/chat/completions", fake.openai, methods=["POST"]),
                            Route("/v1/messages", fake.anthropic, methods=["POST"])])
    async with serve(app, host=host) as url:
        yield fake, url


@dataclass
class Gate:
    """A loopback port forwarding TCP to `target` (a FakeLLM's port) that can refuse connections: `refuse()`
    stops listening and cuts the open connections (clients get ECONNREFUSED, as from a host that is down);
    `accept()` listens again on the same port."""

    target: int
    port: int = field(default_factory=free_port)
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def accept(self) -> None:
        """Listen (again); a no-op while listening."""
        if self._server is None:
            self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    def refuse(self) -> None:
        """Stop listening and reset every open connection; a no-op while refusing."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._open:
            writer.transport.abort()
        self._open.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # refused while connecting
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._open -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream or a reset, then close `writer` (which ends the other direction too)."""
    try:
        with contextlib.suppress(OSError):  # a reset: the Gate refusing, or a side gone
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        writer.close()


@asynccontextmanager
async def gated(target_url: str) -> AsyncIterator[Gate]:
    """A listening Gate in front of the server at `target_url`; closed on exit."""
    gate = Gate(int(target_url.rsplit(":", 1)[1]))
    await gate.accept()
    try:
        yield gate
    finally:
        gate.refuse()


def llm_env(url: str, *providers: str) -> dict[str, str]:
    """Settings that point the named providers (default: Groq and Anthropic) at a FakeLLM at `url`."""
    env = {"CHARLA_LOCAL_MODEL": "off", "CHARLA_LLM_MAX_RETRIES": "2", "CHARLA_TURN_RETRY_S": "0.5"}
    for name in providers or ("groq", "anthropic"):
        if name == "groq":
            env |= {"GROQ_API_KEY": "gsk_test", "GROQ_BASE_URL": url}
        elif name == "anthropic":
            env |= {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": url}
        elif name == "openai":
            env |= {"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_MODEL": "llama3.2", "OPENAI_API_KEY": "sk-test"}
    return env
