"""Audio in and out with PyAV (FFmpeg's libraries in the wheel, no system ffmpeg): any container or codec
FFmpeg reads becomes 16 kHz mono float32 for Whisper; speech goes out as Ogg/Opus mono, as WhatsApp
records voice notes."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from charla.core.errors import PermanentError

RATE = 16_000  # what Whisper and Silero VAD take
VOICE_NOTE_MAX_BYTES = 512 * 1024  # WhatsApp plays larger Ogg/Opus files as documents, not voice notes
OPUS_RATE = 48_000
OPUS_BITRATE = 24_000  # speech: ~3 KB/s, so a voice note stays under the cap for ~2.5 minutes

Samples = npt.NDArray[np.float32]


class AudioProblem(PermanentError):
    """The learner's audio cannot be used; `reason` picks the reply they get."""

    reason = "corrupt"


class EmptyAudio(AudioProblem):
    reason = "empty"


class CorruptAudio(AudioProblem):
    reason = "corrupt"


class NotAudio(AudioProblem):
    reason = "not_audio"


class TooLong(AudioProblem):
    reason = "too_long"

    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"{seconds:.0f} s of audio, over the {limit:.0f} s limit")
        self.seconds, self.limit = seconds, limit


@dataclass(frozen=True)
class Decoded:
    samples: Samples  # 16 kHz mono float32 in [-1, 1]
    codec: str
    container: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


def decode(data: bytes, *, max_seconds: float) -> Decoded:
    """Decode `data` to 16 kHz mono; refuses empty, undecodable and non-audio input, and stops reading
    as soon as the audio runs past `max_seconds` (a 20-minute note is never decoded whole)."""
    if not data:
        raise EmptyAudio("the file is empty (0 bytes)")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptAudio(f"not a readable audio file: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise NotAudio(f"{container.format.name} file without an audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts: list[Samples] = []
        total, limit = 0, int(max_seconds * RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    parts.append(chunk)
                    total += len(chunk)
                if total > limit:
                    seconds = _announced_seconds(container, stream) or total / RATE
                    raise TooLong(max(seconds, total / RATE), max_seconds)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.error.FFmpegError as exc:
            if not parts:
                raise CorruptAudio(f"audio could not be decoded: {exc}") from exc
            # a truncated upload: keep what decoded (the learner hears what was understood)
        codec, fmt = stream.codec_context.name, container.format.name
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if len(samples) == 0:
        raise EmptyAudio("no audio samples in the file")
    return Decoded(samples, codec, fmt)


def _announced_seconds(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if container.duration:
        return float(container.duration / av.time_base)
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def peak_normalise(samples: Samples, peak: float = 0.95) -> Samples:
    """Scale so the loudest sample reaches `peak` (quiet phones); silence stays silence."""
    top = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if top < 1e-4:
        return samples
    return (samples * (peak / top)).astype(np.float32)


def encode_voice_note(samples: Samples, rate: int, *, max_bytes: int = VOICE_NOTE_MAX_BYTES) -> bytes:
    """Ogg/Opus mono (libopus), the format WhatsApp plays inline as a voice note."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=OPUS_RATE, layout="mono")
        stream.bit_rate = OPUS_BITRATE
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise ValueError(f"voice note of {len(data)} bytes exceeds {max_bytes}: say less per note")
    return data
