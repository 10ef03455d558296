"""The learner's wordbook: words they chose to keep (`save <word>`, the save choice under new vocabulary, a ⭐
reaction to a reply with new words). Each saved word joins the profile's vocabulary and gets an FSRS card due
now, so practice reviews it first; `my words` lists them with their strength, `export my words` sends an Anki
deck (.apkg, built with genanki) and a CSV.

The Anki model and deck ids are fixed and each note's guid comes from its word, so importing a newer export
updates the learner's notes instead of duplicating them.
"""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import genanki
from fsrs import Card
from psycopg.types.json import Jsonb

from charla.core.catalog import say
from charla.core.events import Choice, InboundMessage
from charla.store import profile
from charla.store.messages import Conn
from charla.tutor.practice import FSRS
from charla.tutor.prompt import NewWord

APKG = "charla-words.apkg"
CSV = "charla-words.csv"
ANKI_MODEL_ID = 1_716_204_301  # stable: a re-imported deck updates the same note type and deck
ANKI_DECK_ID = 1_716_204_302
STAR = "⭐"
MAX_WORDS = 500  # a wordbook past this refuses new words (with a note): a list to study, not a dictionary
_MODEL = genanki.Model(
    ANKI_MODEL_ID, "Charla word",
    fields=[{"name": "Word"}, {"name": "Translation"}, {"name": "Example"}],
    templates=[{"name": "Word → translation", "qfmt": "<h2>{{Word}}</h2>",
                "afmt": "{{FrontSide}}<hr id=answer><b>{{Translation}}</b><br><i>{{Example}}</i>"}])


@dataclass(frozen=True)
class Entry:
    word: str
    translation: str
    example: str
    strength: float  # 0 … 1: FSRS retrievability once reviewed, else the profile's estimate


def clean(word: str) -> str | None:
    """A saved word's key (lower case, trimmed), None when it is not a word or a short phrase."""
    word = " ".join(word.strip(" \t\n¿?¡!.,;:\"'«»*_~").lower().split())
    return word if 0 < len(word) <= 40 and len(word.split()) <= 4 and any(ch.isalpha() for ch in word) else None


def save_choices(words: list[NewWord], native: str) -> list[Choice]:
    """The save buttons under a reply's new vocabulary (WhatsApp fits three; titles up to 20 characters)."""
    keys = [(k, w) for w in words if (k := clean(w.word))][:3]
    return [Choice(id=f"save:{key}", title=say("wordbook.save_button", native, word=key)[:20]) for key, _ in keys]


async def save(conn: Conn, learner_id: uuid.UUID, word: str, source: str, now: datetime, limit: int) -> str:
    """Keep `word` (call inside a transaction): "added", "known" (already saved), "full" or "invalid"."""
    key = clean(word)
    if key is None:
        return "invalid"
    row = await (await conn.execute("SELECT count(*), count(*) FILTER (WHERE word = %s) FROM wordbook "
                                    "WHERE learner_id = %s", (key, learner_id))).fetchone()
    total, known = (int(str(row[0])), int(str(row[1]))) if row else (0, 0)
    if known:
        return "known"
    if total >= limit:
        return "full"
    translation, example = await _gloss(conn, learner_id, key)
    await conn.execute("INSERT INTO wordbook (learner_id, word, translation, example, source) VALUES (%s, %s, %s, "
                       "%s, %s) ON CONFLICT DO NOTHING", (learner_id, key, translation, example, source))

    def learn(p: profile.Profile) -> None:
        if key not in p.vocabulary:
            p.add_word(key, translation, now)

    await profile.update(conn, learner_id, learn)
    await conn.execute("INSERT INTO practice_cards (learner_id, item, card, due) VALUES (%s, %s, %s, %s) "
                       "ON CONFLICT DO NOTHING", (learner_id, f"word:{key}", Jsonb(Card(due=now).to_dict()), now))
    return "added"


async def _gloss(conn: Conn, learner_id: uuid.UUID, key: str) -> tuple[str, str]:
    """The word's translation and example from the latest turn that introduced it, else the profile's."""
    row = await (await conn.execute(
        """SELECT w->>'translation', w->>'example' FROM turns t, jsonb_array_elements(t.vocabulary) w
           WHERE t.learner_id = %s AND lower(w->>'word') = %s ORDER BY t.id DESC LIMIT 1""",
        (learner_id, key))).fetchone()
    if row is not None:
        return str(row[0] or ""), str(row[1] or "")
    entry = (await profile.load(conn, learner_id)).vocabulary.get(key)
    return (entry.translation if entry else ""), ""


async def react(conn: Conn, learner_id: uuid.UUID, event: InboundMessage, limit: int) -> int:
    """A ⭐ reaction to one of Charla's replies saves that turn's new words; returns how many were added (0 for
    any other message: call it for every inbound one)."""
    message = event.payload.get("message") if event.kind == "reaction" else None
    reaction = message.get("reaction") if isinstance(message, dict) else None
    if not isinstance(reaction, dict) or reaction.get("emoji") != STAR or not reaction.get("message_id"):
        return 0
    rows = await (await conn.execute(
        """SELECT w->>'word' FROM outbound_parts p JOIN messages m ON m.outbound_id = p.outbound_id
           JOIN turns t ON t.reply_to = m.reply_to, jsonb_array_elements(t.vocabulary) w
           WHERE p.provider_message_id = %s AND m.learner_id = %s""",
        (str(reaction["message_id"]), learner_id))).fetchall()
    saved = [await save(conn, learner_id, str(r[0]), "reaction", event.at, limit) for r in rows if r[0]]
    return saved.count("added")


async def entries(conn: Conn, learner_id: uuid.UUID, now: datetime) -> list[Entry]:
    """The saved words, oldest first, each with its strength."""
    rows = await (await conn.execute(
        """SELECT w.word, w.translation, w.example, c.card FROM wordbook w
           LEFT JOIN practice_cards c ON c.learner_id = w.learner_id AND c.item = 'word:' || w.word
           WHERE w.learner_id = %s ORDER BY w.created_at, w.word""", (learner_id,))).fetchall()
    vocabulary = (await profile.load(conn, learner_id)).vocabulary
    found = []
    for word, translation, example, card in rows:
        known = vocabulary.get(str(word))
        strength = known.strength if known else 0.0
        if isinstance(card, dict) and card.get("last_review"):
            strength = FSRS.get_card_retrievability(Card.from_dict(card), now)  # type: ignore[arg-type]
        found.append(Entry(str(word), str(translation), str(example), strength))
    return found


def listing(found: list[Entry], native: str) -> str:
    """`my words`: each word, its translation and a five-dot strength bar."""
    if not found:
        return say("wordbook.empty", native)
    lines = [f"{_bar(e.strength)} *{e.word}*" + (f" — {e.translation}" if e.translation else "") for e in found[-30:]]
    return "\n".join([say("wordbook.title", native, count=len(found)), *lines, say("wordbook.hint", native)])


def _bar(strength: float) -> str:
    full = max(0, min(5, round(strength * 5)))
    return "●" * full + "○" * (5 - full)


def anki(found: list[Entry], deck_name: str) -> bytes:
    """The words as an Anki package: a zip holding the collection (SQLite) with one note per word."""
    deck = genanki.Deck(ANKI_DECK_ID, deck_name)
    for e in found:
        deck.add_note(genanki.Note(model=_MODEL, fields=[e.word, e.translation, e.example],
                                   guid=genanki.guid_for("charla", e.word)))
    package = genanki.Package(deck)
    with tempfile.TemporaryDirectory() as folder:  # genanki's own writer leaves its temporary file behind
        path = Path(folder) / "collection.anki2"
        db = sqlite3.connect(path)
        stamp = time.time()
        package.write_to_db(db.cursor(), stamp, itertools.count(int(stamp * 1000)))
        db.commit()
        db.close()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, "collection.anki2")
            archive.writestr("media", "{}")
    return buffer.getvalue()


def csv_bytes(found: list[Entry]) -> bytes:
    """The words as CSV (UTF-8 with a BOM, so spreadsheets read the accents): word, translation, example, strength."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["word", "translation", "example", "strength"])
    writer.writerows([e.word, e.translation, e.example, f"{e.strength:.2f}"] for e in found)
    return ("\ufeff" + out.getvalue()).encode()
