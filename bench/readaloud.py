"""Benchmark V (part): read-aloud scoring and the voices' word error rates.

- Scoring on a seeded set: every sentence of the read-aloud bank (charla/tutor/content/reading.<lang>.tsv)
  synthesized as read correctly, and again with one word (seeded choice) replaced by a near-nonsense word (its
  vowels changed: "mercado" -> "mircedu"), in English (Piper) and Spanish (Kokoro, the default Spanish voice;
  espeak-ng beside it). Flagged share of the wrong words (goal >= 70 %), false flags on the correct words (goal
  <= 10 %), and the scoring time per note (transcription with word timings + scoring).
- WER per voice engine on the same Spanish sentences (Whisper base): espeak-ng against every Kokoro voice.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.load import loadavg, progress
from charla.tutor import reading
from tests.support.voice_kit import as_received, resample, transcriber, wer
from voice import readaloud
from voice.audio import Samples
from voice.models import piper_english, prepare_kokoro
from voice.tts import Espeak, Kokoro, Piper

_SWAP = str.maketrans("aeiouáéíóú", "iuoeaiuoea")
MODELS = Path(".charla/models")  # where the tests and benchmarks assemble the models (tests/support/voice_kit.py)
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
Speaker = Callable[[str], Samples]


def nonsense(word: str) -> str:
    """A near-nonsense word: the same consonants, other vowels ("milk" -> "molk")."""
    return word.translate(_SWAP)


def seeded_wrong(sentence: str, seed: int) -> tuple[int, str]:
    """Which word of `sentence` is replaced (one of 4+ letters, seeded) and the sentence read with it."""
    words = readaloud.tokens(sentence)
    candidates = [i for i, w in enumerate(words) if len(w) >= 4] or list(range(len(words)))
    index = random.Random(seed).choice(candidates)
    replaced = sentence.replace(words[index], nonsense(words[index]), 1)
    return index, replaced


def speaker(engine: str, language: str, models_dir: Path) -> Speaker:
    if engine == "piper":
        voice = Piper(piper_english(), deterministic=True)
    elif engine == "espeak":
        voice = Espeak("es-419" if language == "es" else language, speed=120)  # type: ignore[assignment]
    else:
        voice = Kokoro(prepare_kokoro(models_dir / "kokoro"), engine.split(":")[1], language)  # type: ignore[assignment]
    return lambda text: resample(*voice.speak(text))


def scoring(language: str, engine: str, models_dir: Path) -> dict[str, object]:
    """Flag rates and timing over the bank of `language`, spoken by `engine`."""
    stt, say = transcriber(str(models_dir)), speaker(engine, language, models_dir)
    wrong_flagged = wrong_total = false_flags = correct_total = 0
    times: list[float] = []
    for n, entry in enumerate(reading.bank(language)):
        progress(f"voice: read-aloud {language} ({engine}) {n + 1}/{len(reading.bank(language))}")
        index, replaced = seeded_wrong(entry.text, n)
        for text, bad in ((entry.text, None), (replaced, index)):
            samples = as_received(say(text))
            started = time.perf_counter()
            heard = stt.transcribe(samples, language, words=True)
            result = readaloud.score(entry.text, heard.words, language, readaloud.ipa)
            times.append(time.perf_counter() - started)
            marks = [m for m in result.marks if m.verdict != readaloud.EXTRA]
            for i, mark in enumerate(marks):
                flagged = mark.verdict != readaloud.OK
                if i == bad:
                    wrong_total, wrong_flagged = wrong_total + 1, wrong_flagged + flagged
                else:
                    correct_total, false_flags = correct_total + 1, false_flags + flagged
    caught, false = wrong_flagged / max(wrong_total, 1), false_flags / max(correct_total, 1)
    return {"engine": engine, "sentences": len(reading.bank(language)), "wrong_words": wrong_total,
            "wrong_flagged_share": round(caught, 3), "false_flag_share": round(false, 3),
            "goal_flagged_ge_70pct_met": caught >= 0.7, "goal_false_le_10pct_met": false <= 0.1,
            "scoring_s_per_note_median": round(statistics.median(times), 3),
            "scoring_s_per_note_max": round(max(times), 3)}


def voice_wer(models_dir: Path) -> dict[str, object]:
    """WER of Whisper base on the Spanish bank, per voice."""
    stt, pool = transcriber(str(models_dir)), [s.text for s in reading.bank("es")]
    out: dict[str, object] = {"sentences": len(pool), "model": "whisper-base"}
    for engine in ("espeak", *(f"kokoro:{v}" for v in KOKORO_VOICES)):
        progress(f"voice: Spanish WER, {engine}")
        say = speaker(engine, "es", models_dir)
        started = time.perf_counter()
        audio = [say(text) for text in pool]
        synth = (time.perf_counter() - started) / len(pool)
        heard = [stt.transcribe(as_received(a), "es").text for a in audio]
        out[engine] = {"wer": round(wer(pool, heard), 3), "synthesis_s_per_sentence": round(synth, 2)}
    return out


def run(models_dir: Path = MODELS, quick: bool = False) -> dict[str, object]:
    result: dict[str, object] = {"en": scoring("en", "piper", models_dir),
                                 "es": scoring("es", "kokoro:jf_gongitsune", models_dir)}
    if not quick:
        result["es_espeak"] = scoring("es", "espeak", models_dir)
        result["spanish_wer_per_voice"] = voice_wer(models_dir)
    return result


def main() -> None:
    """`python -m bench.readaloud [--quick]`: this part alone, saved to bench/results/readaloud.json."""
    result = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "loadavg_at_start": loadavg(),
              **run(quick="--quick" in sys.argv), "loadavg_at_end": loadavg()}
    out = Path("bench/results/readaloud.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
