"""How a topic is split into partition streams, and where each learner's events go.

A topic (constants.STREAM_*) is `partitions` streams. With one partition on a standalone Redis the stream
is the topic itself, so every key keeps the name it had before partitions existed. Otherwise partition p
of P of `charla:stream:inbound` is `charla:stream:inbound:{inbound.p<p>of<P>}` (layouts of different counts
never share a stream, so both can run while the count changes): the braces are a Redis Cluster hash tag,
and every per-learner key the bus's scripts touch embeds the stream name (sequence, done, lock, seal) or
the tag (dedupe), so a partition and all its keys live in one slot and no script is ever CROSSSLOT.
A topic whose name already carries a hash tag (the tests' `test:{stream}`) is its own single partition.

A learner's partition is a stable hash of their id (CRC-32, the same in every process and release).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from charla.core import constants as c

_PARTITION = re.compile(r"(.+):\{[^{}]+\.p\d+of\d+\}")


def hash_tag(key: str) -> str | None:
    """The hash tag of `key` as Redis Cluster reads it (the first non-empty {...}), or None."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else None


def partition_index(learner: str, partitions: int) -> int:
    """Which of `partitions` partitions holds `learner`'s events."""
    return zlib.crc32(learner.encode()) % partitions


@dataclass(frozen=True)
class Layout:
    """Partition streams of every topic: `partitions` of them, hash-tagged when `tagged` (Redis Cluster)."""

    partitions: int = 1
    tagged: bool = False

    def streams(self, topic: str) -> list[str]:
        """Every partition stream of `topic`, in partition order."""
        if hash_tag(topic) is not None or (self.partitions == 1 and not self.tagged):
            return [topic]
        name = topic.rsplit(":", 1)[-1]
        return [f"{topic}:{{{name}.p{p}of{self.partitions}}}" for p in range(self.partitions)]

    def stream(self, topic: str, learner: str) -> str:
        """The partition stream that holds `learner`'s events of `topic`."""
        streams = self.streams(topic)
        return streams[partition_index(learner, len(streams))]

    def topic(self, stream: str) -> str:
        """The topic of a partition stream (the inverse of `streams`)."""
        match = _PARTITION.fullmatch(stream)
        return match.group(1) if match else stream


def dedupe_key(stream: str, key: str) -> str:
    """The publish dedupe key of `key` on `stream`: in the stream's slot when the stream is hash-tagged."""
    tag = hash_tag(stream)
    return c.DEDUPE_KEY.format(key=key if tag is None else f"{{{tag}}}:{key}")


def seal_key(stream: str) -> str:
    """Set on a partition of the previous layout when the partition count changes: publishes move on."""
    return c.SEAL_KEY.format(stream=stream)
