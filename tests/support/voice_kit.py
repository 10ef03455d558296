"""Speech the voice tests and the benchmark make themselves: Piper (English) and espeak-ng (Spanish),
encoded as WhatsApp records voice notes (Ogg/Opus mono), and the models loaded once per process."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jiwer
import numpy as np

from voice import models
from voice.audio import RATE, Samples, decode, encode_voice_note
from voice.stt import SttConfig, Transcriber
from voice.tts import Espeak, Piper

ENGLISH = ["The quick brown fox jumps over the lazy dog.",
           "I would like a cup of coffee with milk, please.",
           "Yesterday we walked to the market and bought fresh bread.",
           "My sister works at the hospital near the train station."]
SPANISH = ["Ayer fui al mercado y compré pan.",
           "Me gusta mucho leer libros por la noche.",
           "El tren sale a las ocho de la mañana.",
           "Mi hermana trabaja en un hospital grande."]

# What a learner says in a long note: different sentences, as in real speech. (Cycling through a few
# sentences makes Whisper's repetition guard re-decode every piece at higher temperatures, ~5x slower:
# that measures a drill, not a note.)
STORY = {"en": [*ENGLISH, "On Sundays we have lunch with my grandparents in the country.",
                "I want to learn how to cook a real paella.", "Last summer we drove to the coast.",
                "My dog is called Lucas and he is three years old.", "I need new shoes for the wedding.",
                "In the evenings I study Spanish with an app.", "The library closes at nine on Fridays.",
                "Tomorrow I am going to call my mother."],
         "es": [*SPANISH, "Los domingos comemos con mis abuelos en el campo.",
                "Quiero aprender a cocinar una paella de verdad.", "El verano pasado viajamos a la costa en coche.",
                "Mi perro se llama Lucas y tiene tres años.", "Necesito comprar zapatos nuevos para la boda.",
                "Por las tardes estudio español con una aplicación.", "La biblioteca cierra a las nueve los viernes.",
                "Mañana voy a llamar a mi madre por teléfono."]}


@functools.cache
def transcriber(models_dir: str = ".charla/models") -> Transcriber:
    """Both Whisper models, loaded once per test process (the base assembled on first use)."""
    stt = Transcriber(SttConfig(multilingual=models.prepare_base(Path(models_dir) / "whisper-base"),
                                english=models.tiny_en(), threads=2))
    stt.load()
    return stt


@functools.cache
def piper() -> Piper:
    return Piper(models.piper_english(), deterministic=True)


@functools.cache
def espeak(language: str = "es-419") -> Espeak:
    return Espeak(language, speed=120)


def speak(text: str, language: str) -> Samples:
    """`text` spoken at 16 kHz: Piper for English, espeak-ng for every other language."""
    samples, rate = piper().speak(text) if language == "en" else espeak().speak(text)
    return resample(samples, rate)


def resample(samples: Samples, rate: int) -> Samples:
    if rate == RATE:
        return samples.astype(np.float32)
    positions = np.arange(0, len(samples), rate / RATE)
    return np.asarray(np.interp(positions, np.arange(len(samples)), samples), dtype=np.float32)


def silence(seconds: float) -> Samples:
    return np.zeros(int(seconds * RATE), np.float32)


def noise(seconds: float, level: float, seed: int = 7) -> Samples:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level).astype(np.float32)


def music(seconds: float) -> Samples:
    """A few chords with a beat: tonal, rhythmic, no words."""
    t = np.arange(int(seconds * RATE)) / RATE
    notes = [220.0, 277.2, 329.6, 440.0]
    chord = sum(np.sin(2 * np.pi * f * t * (1 + 0.5 * (int(i) % 2))) for i, f in enumerate(notes))
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
    return (0.2 * chord * beat).astype(np.float32)


def with_noise(samples: Samples, snr_db: float, seed: int = 3) -> Samples:
    """White noise at `snr_db` below the speech's power."""
    power = float(np.mean(samples ** 2)) or 1e-9
    level = np.sqrt(power / (10 ** (snr_db / 10)))
    return np.asarray(samples + np.random.default_rng(seed).standard_normal(len(samples)) * level, dtype=np.float32)


def note(samples: Samples) -> bytes:
    """A WhatsApp-style voice note (Ogg/Opus mono), without the 512 KB cap of Charla's own notes."""
    return encode_voice_note(samples, RATE, max_bytes=64 * 1024 * 1024)


def as_received(samples: Samples) -> Samples:
    """What Charla decodes from that note (the codec's loss included)."""
    return decode(note(samples), max_seconds=3600).samples


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    return float(jiwer.wer(_norm(reference), _norm(hypothesis)))


def _norm(text: str | list[str]) -> str | list[str]:
    from voice.pronounce import words

    return [" ".join(words(t)) for t in text] if isinstance(text, list) else " ".join(words(text))


def voice_webhook(wa_id: str, wamid: str, media_id: str, name: str = "Learner") -> bytes:
    """A Meta delivery with one voice note, shaped like `wa_voice.json`, timestamped now."""
    from tests.support.payloads import fixture_json

    payload = fixture_json("wa_voice.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
    message = value["messages"][0]
    message.update({"from": wa_id, "id": wamid, "timestamp": str(int(time.time()))})
    message["audio"]["id"] = media_id
    return json.dumps(payload).encode()
