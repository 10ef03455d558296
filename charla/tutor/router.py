"""Which model answers a turn: hard grammar questions to Claude, the rest to the cheap primary, and a
fallback along the configured chain, with a circuit breaker per provider.

The breaker (purgatory) opens after CHARLA_LLM_BREAKER_THRESHOLD consecutive failures and lets one
trial request through after CHARLA_LLM_BREAKER_COOLDOWN_S; requests that no provider could have
answered (a 400) do not count. Breaker changes are written to Redis for `charla status`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import regex
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from redis.asyncio import Redis

from charla.core import alerts, metrics
from charla.core import constants as c
from charla.core.settings import Settings
from charla.tutor.llm import (
    LLM,
    Claude,
    Completion,
    LLMAuthError,
    LLMError,
    LocalModel,
    OpenAIStyle,
    Prompt,
    smollm2_path,
)

log = logging.getLogger(__name__)

# Words that make a message a grammar question (English and Spanish, accents optional).
_ASKING = regex.compile(r"\b(why|explain|difference|when (do|should) (i|you) use|how do(es)? .* work|rule|"
                        r"por ?qu[eé]|expl[ií]ca(me)?|diferencia|cu[aá]ndo (se )?usa|regla)\b", regex.I)
_GRAMMAR = regex.compile(r"\b(subjunctive|subjuntivo|ser\b.*\bestar|estar\b.*\bser|preterite|pret[eé]rito|"
                         r"imperfect|imperfecto|conditional|condicional|pluperfect|pluscuamperfecto|"
                         r"por\b.*\bpara|para\b.*\bpor|gerund|gerundio|participle|participio|"
                         r"reflexive|reflexivo|pronoun|pronombre|tense|tiempo verbal|mood|modo|agreement|"
                         r"concordancia|article|art[ií]culo|passive|pasiva|present perfect|"
                         r"grammar|gram[aá]tica|conjugat\w*|conjuga\w*)\b", regex.I)


def is_hard_grammar(text: str) -> bool:
    """A question about a grammar point ("why subjunctive here?", "explain ser vs estar")."""
    return bool(_ASKING.search(text) and _GRAMMAR.search(text))


@dataclass(frozen=True)
class Route:
    reason: str  # "default", "hard_grammar", "low_confidence", "summary"
    chain: tuple[str, ...]


class AllProvidersFailed(LLMError):
    """Every provider of the chain failed or is switched off by its breaker."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("all", "; ".join(f"{k}: {v}" for k, v in errors.items()) or "no provider configured")
        self.errors = errors


# USD per million input/output tokens, by model-name prefix (longest match wins); CHARLA_LLM_PRICES adds
# to or overrides these. Unknown models cost 0 and are logged once.
PRICES: dict[str, tuple[float, float]] = {
    "llama-3.3-70b": (0.59, 0.79), "llama-3.1-8b": (0.05, 0.08), "llama3-70b": (0.59, 0.79),
    "llama3-8b": (0.05, 0.08), "meta-llama/llama-4-scout": (0.11, 0.34), "openai/gpt-oss-20b": (0.075, 0.30),
    "claude-sonnet-4": (3.0, 15.0), "claude-haiku-4": (1.0, 5.0), "claude-opus-4": (15.0, 75.0),
    "claude-3-5-haiku": (0.8, 4.0), "SmolLM2": (0.0, 0.0), "llama3": (0.0, 0.0), "llama3.2": (0.0, 0.0),
}


_UNPRICED: set[str] = set()


def cost_usd(model: str, input_tokens: int, output_tokens: int, prices: dict[str, tuple[float, float]]) -> float:
    matches = [p for p in prices if model.startswith(p)]
    if not matches:
        if model not in _UNPRICED:
            _UNPRICED.add(model)
            log.warning("no price known for model %r: its cost is recorded as 0 (set CHARLA_LLM_PRICES)", model)
        return 0.0
    per_in, per_out = prices[max(matches, key=len)]
    return (input_tokens * per_in + output_tokens * per_out) / 1_000_000


def open_providers(settings: Settings) -> dict[str, LLM]:
    """The providers that are configured: each with a key (or base URL), plus the offline model. The SDKs
    run on their aiohttp transport (less CPU per request than httpx: measured with `make bench`)."""
    timeout, retries = settings.llm_timeout_s, settings.llm_max_retries
    found: dict[str, LLM] = {}
    if settings.groq_api_key:
        import groq

        client: Any = groq.AsyncGroq(api_key=settings.groq_api_key.get_secret_value(), base_url=settings.groq_base_url,
                                     timeout=timeout, max_retries=retries, http_client=groq.DefaultAioHttpClient())
        found["groq"] = OpenAIStyle("groq", settings.groq_model, client, groq)
    if settings.anthropic_api_key:
        import anthropic

        client = anthropic.AsyncAnthropic(api_key=settings.anthropic_api_key.get_secret_value(),
                                          base_url=settings.anthropic_base_url, timeout=timeout, max_retries=retries,
                                          http_client=anthropic.DefaultAioHttpClient())
        found["anthropic"] = Claude(settings.anthropic_model, client, anthropic)
    if settings.openai_base_url:
        import openai

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        client = openai.AsyncOpenAI(api_key=key, base_url=settings.openai_base_url, timeout=timeout,
                                    max_retries=retries, http_client=openai.DefaultAioHttpClient())
        found["openai"] = OpenAIStyle("openai", settings.openai_model or "", client, openai)
    if settings.local_model_enabled(bool(found)):
        path = settings.local_model_path or smollm2_path()
        found["local"] = LocalModel(path, threads=settings.local_model_threads,
                                    repeat_penalty=settings.local_model_repeat_penalty)
    return found


@dataclass
class Router:
    """Chooses and calls providers. One per process; its breakers live as long as it does."""

    providers: dict[str, LLM]
    chain: tuple[str, ...]
    hard_chain: tuple[str, ...]
    redis: Redis | None = None
    threshold: int = 5
    cooldown_s: float = 30.0
    breakers: AsyncCircuitBreakerFactory = field(init=False)
    _notes: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=self.threshold, default_ttl=self.cooldown_s,
            exclude=[(LLMError, lambda exc: not exc.counts_as_failure)])
        self.breakers.add_listener(self._note_state)

    @classmethod
    def from_settings(cls, settings: Settings, providers: dict[str, LLM], redis: Redis | None = None) -> Router:
        return cls(providers, _present(settings.llm_chain, providers), _present(settings.llm_hard_chain, providers),
                   redis, settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s)

    def route(self, text: str) -> Route:
        if is_hard_grammar(text):
            return Route("hard_grammar", self.hard_chain)
        return Route("default", self.chain)

    def escalation(self, answered_by: str) -> Route | None:
        """Where a low-confidence answer goes for a second opinion (Claude first), if anywhere."""
        if not self.hard_chain or answered_by == self.hard_chain[0]:
            return None
        return Route("low_confidence", self.hard_chain)

    @property
    def demo_only(self) -> bool:
        return all(self.providers[name].demo for name in self.chain)

    async def complete(self, route: Route, prompt: Prompt) -> Completion:
        """The first answer along `route.chain`; AllProvidersFailed when none could answer."""
        errors: dict[str, str] = {}
        for name in route.chain:
            try:
                async with await self.breakers.get_breaker(name):
                    with metrics.provider_call(name, "complete"):
                        return await self.providers[name].complete(prompt)
            except OpenedState:
                errors[name] = "circuit open"
                metrics.provider_error(name, "complete", "circuit_open")
            except LLMError as exc:
                errors[name] = str(exc)
                if isinstance(exc, LLMAuthError):
                    await self._alert(name, exc)
                log.warning("LLM %s failed (%s); trying the next provider", name, exc)
        raise AllProvidersFailed(errors)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await asyncio.gather(*self._notes, return_exceptions=True)

    def _note_state(self, name: str, event_name: str, event: Any) -> None:
        if event_name != "state_changed" or self.redis is None:
            return
        log.warning("LLM circuit %s is now %s", name, event.state)
        note = json.dumps({"state": event.state, "at": time.time()})
        task = asyncio.ensure_future(self.redis.hset(c.LLM_CIRCUITS_KEY, name, note))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _alert(self, name: str, exc: LLMError) -> None:
        if self.redis is not None:
            message = f"{name} refused the API key ({exc.status}): check its *_API_KEY"
            await alerts.alert(self.redis, f"llm-{name}", message)


def _present(names: tuple[str, ...], providers: dict[str, LLM]) -> tuple[str, ...]:
    return tuple(name for name in names if name in providers)
