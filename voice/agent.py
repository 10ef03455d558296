"""The voice agent: its own process and stream, so text replies never wait behind audio.

Two kinds of work arrive on the voice stream:
- a learner's voice note (InboundMessage, kind audio): download it (Meta's media flow, Twilio's MediaUrl,
  or the console's upload), decode it (PyAV), transcribe it (faster-whisper) in the learner's language,
  check a repeated phrase's pronunciation, and publish the result on the inbound stream as the learner's
  message, where the conversation agent answers it like text. A note that cannot be used (empty, corrupt,
  silent, too long, expired) is published with the problem instead, so the learner gets a kind reply from
  the same place every reply comes from; nothing is retried forever. A download whose credentials the
  provider rejects raises an operator alert and is retried 30 s apart (charla.channels.media.MediaAuthError), so a
  token renewed within a few minutes still hears the note; after the bus's last delivery the learner is
  told kindly to send it again.
- a SpeakRequest: synthesize the phrase (Piper/espeak-ng), keep the Ogg/Opus under MEDIA_KEY and hand a
  voice message to the sender.
Models load once at startup; CHARLA_VOICE_WORKERS notes are transcribed at once, at CHARLA_VOICE_NICE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from charla.channels import media as media_store
from charla.channels.media import (
    Media,
    MediaAuthError,
    MediaGone,
    MediaRefused,
    MediaTooLarge,
)
from charla.channels.meta.channel import NoMediaId
from charla.channels.registry import Channels, open_channels
from charla.core import alerts, logs
from charla.core import constants as c
from charla.core.bus import Delivery
from charla.core.errors import PermanentError, TransientError
from charla.core.events import InboundMessage, OutboundMessage, SpeakRequest
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.core.worker import Handler
from charla.store import activities, learners, messages, profile, session
from payments import entitlements
from voice import models, pronounce
from voice.audio import AudioProblem, decode
from voice.heard import Heard, Pronunciation
from voice.stt import SttConfig, Transcriber, Transcript
from voice.tts import EngineUnavailable, TtsConfig, Voices

log = logging.getLogger(__name__)

T = TypeVar("T")
REPEAT_SIMILARITY = 0.5  # below this the learner said something else, not the phrase: no pronunciation check
READING = "speak"  # the activity whose open sentence a note is a reading of (agents/speaking.py)


class NoMedia(AudioProblem):
    """The webhook named no media to download."""

    reason = "corrupt"


def stt_config(settings: Settings, progress: models.Progress | None = None) -> SttConfig:
    """The models to load: configured paths, else the bundled ones (the base assembled on first use)."""
    multilingual = settings.whisper_model or models.prepare_base(settings.models_dir / "whisper-base", progress)
    choice = settings.whisper_english_model
    english = None if choice == "off" else models.tiny_en() if choice == "bundled" else Path(choice)
    return SttConfig(multilingual=multilingual, english=english, threads=settings.voice_threads,
                     workers=settings.voice_workers, beam_size=settings.voice_beam_size,
                     noise_reduction=settings.voice_noise_reduction)


def tts_config(settings: Settings) -> TtsConfig:
    return TtsConfig(engines=settings.tts_engines, piper_voices=settings.piper_voices,
                     coqui_model=settings.coqui_model, coqui_languages=settings.coqui_languages,
                     kokoro_languages=tuple(filter(None, settings.kokoro_languages.replace(" ", "").split(","))),
                     models_dir=settings.models_dir)


def build(res: Resources) -> Handler:
    settings = res.settings
    listening = ThreadPoolExecutor(settings.voice_workers, thread_name_prefix="listen",
                                   initializer=yield_cpu, initargs=(settings,))
    res.closers.append(lambda: asyncio.to_thread(listening.shutdown))
    stt = Transcriber(stt_config(settings, _log_progress))
    listening.submit(stt.load).result()  # in a listening thread: the threads the models start inherit its priority
    voices = Voices(tts_config(settings))
    engines = voices.load(dict.fromkeys([settings.default_target_language, settings.default_native_language, "en"]))
    log.info("voice agent ready: stt %s + %s, tts %s", models.label(stt.config.multilingual),
             models.label(stt.config.english) if stt.config.english else "-", engines)
    return VoiceAgent(res, stt, voices, listening, open_channels(res)).handle


def yield_cpu(settings: Settings) -> None:
    """Let every other process take the CPU before this thread (and the threads it starts): SCHED_IDLE
    (CHARLA_VOICE_IDLE), under which the kernel preempts it the moment a text turn wakes, else `nice`
    CHARLA_VOICE_NICE, which only weighs it lower. Only the listening threads yield (decoding, VAD,
    Whisper): the event loop keeps its normal priority, so heartbeats, lease renewals and spoken replies
    never starve on a busy machine. Where SCHED_IDLE does not exist (not Linux), nice is used."""
    if settings.voice_idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif settings.voice_nice:
        os.nice(settings.voice_nice)


def _log_progress(done: int, total: int) -> None:
    if done == total or done % (32 * 1024 * 1024) < 4 * 1024 * 1024:
        log.info("assembling the multilingual Whisper model: %d%%", done * 100 // total)


@dataclass
class VoiceAgent:
    res: Resources
    stt: Transcriber
    voices: Voices
    listening: Executor  # CHARLA_VOICE_WORKERS threads at the voice priority (yield_cpu)
    channels: Channels  # where notes are downloaded from, by the provider they came through

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.event()
        if isinstance(event, SpeakRequest):
            await self.speak(event)
        elif isinstance(event, InboundMessage):
            await self.hear(delivery, event)
        else:
            raise PermanentError(f"voice agent cannot handle {event.type}")

    async def hear(self, delivery: Delivery, event: InboundMessage) -> None:
        if await entitlements.is_blocked(self.res.redis, event.learner):
            log.info("learner %s is blocked: voice note %s dropped", logs.pseudonym(event.learner),
                     event.message_id)
            return
        settings = self.res.settings
        target, native, repeat, reading = await self._context(event)
        try:
            media = await self._download(event)
            decoded = await self._listen(decode, media.content, max_seconds=settings.voice_max_seconds)
            words = repeat is not None or reading is not None  # word timings only for a pronunciation check
            found = await self._listen(self.stt.transcribe, decoded.samples, target, words=words)
            if (found.confidence < settings.voice_min_confidence and native != target and found.seconds < 60
                    and reading is None):  # (a reading is in the target language, however unsure)
                other = await self._listen(self.stt.transcribe, decoded.samples, native, words=words)
                found = other if other.confidence > found.confidence else found  # they spoke their own language
        except MediaRefused as exc:  # a forged or tampered webhook: nothing was fetched
            log.warning("voice note %s refused: %s", event.message_id, exc)
            await self._publish(event, Heard(problem="unavailable"))
            return
        except MediaGone:
            await self._publish(event, Heard(problem="expired"))
            return
        except MediaTooLarge:
            await self._publish(event, Heard(problem="too_large", limit_s=settings.voice_max_seconds))
            return
        except AudioProblem as exc:
            log.info("voice note %s unusable (%s): %s", event.message_id, exc.reason, exc)
            await self._publish(event, Heard(problem=exc.reason, seconds=getattr(exc, "seconds", 0.0),
                                             limit_s=settings.voice_max_seconds))
            return
        except TransientError as exc:
            if isinstance(exc, MediaAuthError):  # retried after 30 s: the note waits for a renewed token
                await alerts.credentials_rejected(self.res.redis, exc.provider, exc.code, exc)
            if await self.res.bus.delivery_count(delivery, "voice") < settings.bus_max_deliveries:
                raise  # the bus retries with backoff
            log.warning("voice note %s could not be fetched after retries: %s", event.message_id, exc)
            await self._publish(event, Heard(problem="unavailable"))
            return
        await self._publish(event, self._heard(found, repeat, reading), found.text)

    async def _listen(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work` in a listening thread (at the voice priority)."""
        return await asyncio.get_running_loop().run_in_executor(self.listening, partial(work, *args, **kwargs))

    def _heard(self, found: Transcript, repeat: str | None, reading: str | None) -> Heard:
        settings = self.res.settings
        heard = Heard(confidence=round(found.confidence, 3), seconds=round(found.seconds, 2), language=found.language,
                      model=found.model, low_confidence=found.confidence < settings.voice_min_confidence)
        if not found.heard_speech:
            heard.problem = "silent"
        elif reading is not None:  # scored by the read-aloud challenge (agents/speaking.py), however unsure
            heard.reading = reading
            heard.words = [(w.text, round(w.start, 2), round(w.end, 2), round(w.probability, 3)) for w in found.words]
        elif heard.low_confidence and settings.voice_low_confidence == "ask":
            heard.problem = "unclear"
        elif repeat and pronounce.similarity(repeat, found.text) >= REPEAT_SIMILARITY:
            heard.pronunciation = Pronunciation.of(pronounce.assess(repeat, found.words))
        return heard

    async def _context(self, event: InboundMessage) -> tuple[str, str, str | None, str | None]:
        """The learner's target and native languages (the transcription hint), the phrase they were asked
        to repeat, if any, and the sentence of their open read-aloud challenge, if any."""
        settings = self.res.settings
        target, native, reading = settings.default_target_language, settings.default_native_language, None
        async with self.res.pool.connection() as conn:
            learner_id = await learners.find(conn, event.identity)
            if learner_id is not None:
                stored = await profile.load(conn, learner_id)
                target, native = stored.target_language or target, stored.native_language or native
                active = await activities.current(conn, learner_id)
                reading = str(active.state.get("sentence") or "") or None if active and active.kind == READING else None
        sess = await session.load(self.res.redis, event.learner)
        return target, native, sess.repeat, reading

    async def _download(self, event: InboundMessage) -> Media:
        channel = self.channels.channel_for(event.provider)
        try:
            return await channel.download(event, self.res.settings.max_media_bytes)
        except NoMediaId as exc:
            raise NoMedia(str(exc)) from exc

    async def _publish(self, event: InboundMessage, heard: Heard, text: str | None = None) -> None:
        """The note as the learner's message on the inbound stream (deduplicated per note); with a problem
        it carries no text, so it is answered with the problem, not tutored."""
        if heard.problem is not None:
            heard.transcript, text = (text or "")[:300], None
        payload = {**event.payload, "voice": heard.model_dump()}
        message = event.model_copy(update={"text": text or None, "payload": payload})
        await self.res.bus.publish(c.STREAM_INBOUND, message, dedupe_key=f"heard:{event.id}")

    async def speak(self, event: SpeakRequest) -> None:
        outbound_id = uuid.UUID(event.outbound_id)
        try:
            audio = await asyncio.to_thread(partial(self.voices.say, event.text, event.language, slow=event.slow))
        except (EngineUnavailable, ValueError) as exc:
            log.warning("no voice note for %s: %s", event.outbound_id, exc)
            async with self.res.pool.connection() as conn:
                await messages.mark_failed(conn, outbound_id, {"reason": f"text to speech: {exc}"})
            return
        token = secrets.token_urlsafe(18)
        await media_store.keep(self.res.redis, f"out:{token}", audio)
        message = OutboundMessage(id=f"out-{event.outbound_id}", learner=event.learner, outbound_id=event.outbound_id,
                                  provider=event.provider, to=event.to, via=event.via, kind="voice", text=event.text,
                                  audio=token)
        await self.res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{event.outbound_id}")

