"""One tutoring turn through the models: fit the prompt to its budget (folding the oldest part of the
session into a summary), route it, validate the structured answer (repair, retry once, then plain text),
and ask Claude for a second opinion when the first answer was unsure of itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from charla.core import metrics
from charla.core.catalog import say
from charla.core.settings import Settings
from charla.store.profile import Profile, explanation_language
from charla.store.session import Session
from charla.store.turns import Usage
from charla.tutor import guard, offline, taxonomy
from charla.tutor.findings import checked, merge
from charla.tutor.llm import Completion, Prompt
from charla.tutor.prompt import (
    Correction,
    InvalidReply,
    TutorReply,
    build_prompt,
    degrade,
    language_name,
    parse,
    prompt_tokens,
    repair_prompt,
    reveals,
    summary_prompt,
    system_prompt,
)
from charla.tutor.router import PRICES, AllProvidersFailed, Route, Router, cost_usd

log = logging.getLogger(__name__)

@dataclass
class Meter:
    """Tokens, cost and model time of every call a turn makes (repairs and summaries included)."""

    prices: dict[str, tuple[float, float]]
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    llm_ms: float = 0.0

    def add(self, completion: Completion) -> Completion:
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cost += cost_usd(completion.model, completion.input_tokens, completion.output_tokens, self.prices)
        self.llm_ms += completion.latency_ms
        return completion

    def usage(self, completion: Completion, route: str) -> Usage:
        return Usage(provider=completion.provider, model=completion.model, route=route,
                     input_tokens=self.input_tokens, output_tokens=self.output_tokens, cost_usd=self.cost,
                     llm_ms=round(self.llm_ms), demo=completion.demo)


@dataclass
class Answer:
    reply: TutorReply
    usage: Usage
    demo: bool = False


@dataclass(frozen=True)
class Turn:
    """What a fallback reply needs to know of the turn."""

    texts: list[str]
    session: Session
    profile: Profile
    target: str
    native: str


@dataclass
class Tutor:
    router: Router
    settings: Settings

    def languages(self, profile: Profile) -> tuple[str, str]:
        return (profile.target_language or self.settings.default_target_language,
                profile.native_language or self.settings.default_native_language)

    async def answer(self, texts: list[str], session: Session, profile: Profile, memories: list[str],
                     exercise: str | None = None, spoken: str | None = None, unclear: bool = False,
                     brief: str | None = None) -> Answer:
        """The tutor's answer to `texts` (a burst, in order). `spoken` tells the model the words came from a
        voice note; `brief` is a guided activity's instructions for this turn (a roleplay); an `unclear`
        transcript goes to the hard chain (Claude first) to be read charitably. Every reply passes the output
        guard; the checker's findings are merged into its corrections.
        Raises AllProvidersFailed."""
        meter = Meter({**PRICES, **self.settings.llm_prices})
        target, native = self.languages(profile)
        if self.router.demo_only:
            return await self._offline(texts, session, profile, meter, roleplay=brief is not None)
        turn = Turn(texts, session, profile, target, native)

        def system() -> str:
            return system_prompt(profile, session, target, native, memories, exercise=exercise, spoken=spoken,
                                 brief=brief)

        prompt = await self._fit(system, session, texts, meter)
        route = self.router.route("\n".join(texts))
        if unclear and self.router.hard_chain:
            route = Route("unclear_transcript", self.router.hard_chain)
        reply, completion = await self._guarded(route, prompt, meter, turn)
        found = await checked(texts, target)  # once per turn, whichever answer it is merged into
        explain_in = explanation_language(profile, native, target)
        merged = merge(_fitted(reply, target), found, explain_in)
        second = self.router.escalation(completion.provider)
        if (reply.confidence < self.settings.llm_confidence_min or merged.contradicted) and second is not None:
            try:
                reply, completion = await self._guarded(second, prompt, meter, turn)
                route = second
                merged = merge(_fitted(reply, target), found, explain_in)
            except AllProvidersFailed as exc:
                log.info("no second opinion (%s); keeping the first answer", exc)
        reply = reply.model_copy(update={"corrections": merged.corrections})
        rules = system_prompt(Profile(), Session(), target, native, [])  # no learner data
        return Answer(_safe(reply, completion.provider, rules, native), meter.usage(completion, route.reason),
                      completion.demo)

    async def _offline(self, texts: list[str], session: Session, profile: Profile, meter: Meter,
                       roleplay: bool = False) -> Answer:
        """Offline mode: the checker's corrections and a question from the content bank, with the demo
        model's sentence when it comes within CHARLA_OFFLINE_MODEL_S and passes the guard. In a `roleplay`
        the activity says its own lines instead of the bank's question (a mission's scripted counterpart)."""
        target, native = self.languages(profile)
        sentence, completion = None, None
        if self.settings.offline_model_s > 0:
            prompt = offline.sentence_prompt(texts, target, self.settings.offline_model_s)
            try:
                completion = meter.add(await self.router.complete(Route("offline", self.router.chain), prompt))
            except AllProvidersFailed as exc:
                log.info("no demo sentence (%s): the checker answers alone", exc)
            text = completion.text if completion is not None else ""
            if guard.plainly_in(text, target) and not guard.problems(text, prompt, self._limits(target, native)):
                sentence = text.strip()
        reply = await asyncio.to_thread(offline.checked_reply, texts, session, profile, target, native, sentence)
        reply.question = None if roleplay else reply.question
        usage = meter.usage(completion, "offline") if completion else Usage("local", route="offline", demo=True)
        return Answer(reply, usage, demo=True)

    def _limits(self, target: str, native: str) -> guard.Limits:
        return guard.Limits((target, native), self.settings.guard_max_reply_chars)

    async def _guarded(self, route: Route, prompt: Prompt, meter: Meter, turn: Turn) -> tuple[TutorReply, Completion]:
        """A structured reply that passed the output guard: asked once more when it failed, then the
        checker's corrections and a question from the content bank (no degenerate text reaches a learner)."""
        limits = self._limits(turn.target, turn.native)
        reply, completion = await self._structured(route, prompt, meter, turn.native)
        if not (found := guard.problems(reply.reply, prompt, limits)):
            return reply, completion
        log.warning("%s's reply failed the output guard (%s); asking once more", completion.provider, found)
        for problem in found:
            metrics.provider_error(completion.provider, "guard", problem)
        retry = Route(route.reason, (completion.provider, *[p for p in route.chain if p != completion.provider]))
        again = guard.retry_prompt(prompt, found, language_name(turn.target))
        try:
            reply, completion = await self._structured(retry, again, meter, turn.native)
        except AllProvidersFailed as exc:
            log.info("no retry (%s)", exc)
        else:
            if not (found := guard.problems(reply.reply, prompt, limits)):
                return reply, completion
        log.warning("%s's reply failed the output guard again (%s): the checker answers", completion.provider, found)
        fallback = await asyncio.to_thread(offline.checked_reply, turn.texts, turn.session, turn.profile, turn.target,
                                           turn.native)
        return fallback, completion

    async def _fit(self, system: Callable[[], str], session: Session, texts: list[str], meter: Meter) -> Prompt:
        """The prompt within CHARLA_PROMPT_BUDGET_TOKENS: while it is over, the oldest half of the session
        becomes part of its summary (a sliding window), so nothing is cut unread."""
        prompt = build_prompt(system(), session, texts, self.settings.llm_max_tokens)
        while prompt_tokens(prompt) > self.settings.prompt_budget_tokens and len(session.messages) >= 2:
            fold = len(session.messages) // 2
            done = meter.add(await self.router.complete(Route("summary", self.router.chain),
                                                        summary_prompt(session, fold, session.summary)))
            session.summary = done.text.strip()[:1500]
            del session.messages[:fold]
            prompt = build_prompt(system(), session, texts, self.settings.llm_max_tokens)
        return prompt

    async def _structured(self, route: Route, prompt: Prompt, meter: Meter,
                          native: str) -> tuple[TutorReply, Completion]:
        first = meter.add(await self.router.complete(route, prompt))
        if first.demo:
            return degrade(first.text) or TutorReply(reply=say("confused", native)), first
        try:
            return parse(first.text), first
        except InvalidReply as exc:
            # The validation error quotes the model's output, which may quote the learner: DEBUG only.
            log.warning("%s gave an invalid structured reply; asking once more", first.provider)
            log.debug("%s's invalid reply: %s", first.provider, exc)
            problem = str(exc)
        retry_route = Route(route.reason, (first.provider, *[p for p in route.chain if p != first.provider]))
        second = meter.add(await self.router.complete(retry_route, repair_prompt(prompt, first.text, problem)))
        try:
            return parse(second.text), second
        except InvalidReply:
            log.warning("%s stayed invalid after a retry; answering in plain text", second.provider)
        return degrade(second.text) or degrade(first.text) or TutorReply(reply=say("confused", native)), second


def _fitted(reply: TutorReply, target: str) -> list[Correction]:
    """The model's corrections, each in one of the target language's categories (charla.tutor.taxonomy)."""
    return [c.model_copy(update={"category": taxonomy.fit(c.category, target)}) for c in reply.corrections]


def _safe(reply: TutorReply, provider: str, rules: str, native: str) -> TutorReply:
    """`reply`, unless it repeats a long stretch of the tutor's instructions (a model talked into printing
    them): then a harmless answer. Logged without the reply, which may quote the learner."""
    if not reveals(reply, rules):
        return reply
    log.warning("%s's reply repeated the tutor's instructions; a safe answer goes out instead", provider)
    return TutorReply(reply=say("confused", native))
