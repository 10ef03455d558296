"""The wordbook (issue 22): `save <word>` in English and Spanish, the ⭐ save choice under new vocabulary, a ⭐
reaction to a reply with new words; `my words` with their strength; `export my words` as an Anki package
(a zip holding the SQLite collection with one note per word) and a CSV, sent as WhatsApp documents. Through
the running stack with the scripted LLM."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from charla.tutor import commands, wordbook
from tests.agents.test_choices import tap
from tests.agents.test_conversation import bodies, rows, say
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"
MADRUGAR = json.dumps({"reply": "¡Qué bien!", "confidence": 0.9, "corrections": [], "new_vocabulary": [
    {"word": "madrugar", "translation": "to get up early", "example": "Me gusta madrugar."}]}, ensure_ascii=False)
AGOTADO = json.dumps({"reply": "¡Descansa!", "confidence": 0.9, "corrections": [], "new_vocabulary": [
    {"word": "agotado", "translation": "exhausted", "example": "Estoy agotado."},
    {"word": "la siesta", "translation": "the nap", "example": "Duermo la siesta."}]}, ensure_ascii=False)


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server) as running:
        yield running


def reaction(message_id: str, emoji: str, wamid: str) -> bytes:
    """Meta's reaction webhook (as tests/fixtures/wa_reaction.json) from the test learner."""
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
                  "contacts": [{"profile": {"name": "Ana"}, "wa_id": WA}],
                  "messages": [{"from": WA, "id": wamid, "timestamp": str(int(time.time())), "type": "reaction",
                                "reaction": {"message_id": message_id, "emoji": emoji}}]}}]}]}).encode()


def test_save_phrasings() -> None:
    assert commands.parse("save cansado") == commands.Command("save", "cansado")
    assert commands.parse("Guarda la palabra está") == commands.Command("save", "está")
    assert commands.parse("añade madrugar a mis palabras") == commands.Command("save", "madrugar")
    assert commands.parse("save my data") is None
    assert commands.parse("my words") == commands.Command("my_words")
    assert commands.parse("mis palabras") == commands.Command("my_words")
    assert commands.parse("export my words") == commands.Command("export_words")
    assert commands.parse("exporta mis palabras") == commands.Command("export_words")
    assert commands.parse("keep the word agotado") == commands.Command("save", "agotado")
    assert commands.parse("add madrugar to my words") == commands.Command("save", "madrugar")
    for sentence in ("keep going", "keep practicing", "keep calm", "add salt please", "add more examples",
                     "save me a seat", "save the date", "save it", "keep it simple"):
        assert commands.parse(sentence) is None, sentence  # conversation, not a word to keep


async def test_a_number_answering_the_tutor_saves_no_word(stack: Stack, db: str) -> None:
    stack.llm.script["groq"] = [MADRUGAR, AGOTADO]
    await say(stack, "Me levanto a las seis")  # the reply offers ⭐ madrugar
    await stack.fake.wait_for(1, seconds=10)
    await say(stack, "1")  # "how many times?" "1": words for the tutor
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack)[1].startswith("¡Descansa!")
    assert await words(db) == []


async def test_keep_going_is_conversation_not_a_saved_word(stack: Stack, db: str) -> None:
    stack.llm.script["groq"] = [MADRUGAR]
    await say(stack, "keep going")
    await stack.fake.wait_for(1, seconds=10)
    assert bodies(stack)[0].startswith("¡Qué bien!")  # the tutor answered it
    assert await words(db) == []


async def words(db: str) -> list[str]:
    return [str(r[0]) for r in await rows(db, "SELECT word FROM wordbook ORDER BY created_at, word")]


async def test_save_choose_react_list_and_export(stack: Stack, db: str) -> None:
    stack.llm.script["groq"] = [MADRUGAR, AGOTADO]
    await say(stack, "Me levanto a las seis")
    await stack.fake.wait_for(1, seconds=10)
    offered = stack.fake.sent[0]
    assert offered["type"] == "interactive"
    (save,) = offered["interactive"]["action"]["buttons"]
    assert (save["reply"]["id"], save["reply"]["title"]) == ("save:madrugar", "⭐ madrugar")
    await tap(stack, "save:madrugar", "⭐ madrugar", stack.fake.ids[0])
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack)[1] == "⭐ Saved *madrugar* to your words. I'll bring it back in practice."

    await say(stack, "Guarda la palabra está")
    await stack.fake.wait_for(3, seconds=10)
    await say(stack, "save madrugar")
    await stack.fake.wait_for(4, seconds=10)
    assert bodies(stack)[3] == "*madrugar* is already in your words 👍"

    await say(stack, "Estoy muy cansado hoy")  # the reply brings agotado and la siesta
    await stack.fake.wait_for(5, seconds=10)
    assert (await stack.post(reaction(stack.fake.ids[4], "😮", "wamid.react1"))).status_code == 200
    assert (await stack.post(reaction(stack.fake.ids[4], "⭐", "wamid.react2"))).status_code == 200

    async def all_saved() -> bool:
        return await words(db) == ["madrugar", "está", "agotado", "la siesta"]
    await eventually(all_saved, 10, "the starred reply's words saved")
    cards = await rows(db, "SELECT item FROM practice_cards ORDER BY item")
    assert [str(r[0]) for r in cards] == ["word:agotado", "word:está", "word:la siesta", "word:madrugar"]
    assert len(stack.fake.sent) == 5  # a reaction is not answered

    await say(stack, "my words")
    await stack.fake.wait_for(6, seconds=10)
    listing = bodies(stack)[5]
    assert listing.startswith("📒 *Your words* (4):")
    assert re.search(r"^[●○]{5} \*madrugar\* — to get up early$", listing, re.M)
    assert "*agotado* — exhausted" in listing

    await say(stack, "export my words")
    await stack.fake.wait_for(9, seconds=15)
    assert bodies(stack)[6] == "📤 Your words (4): an Anki deck and a CSV follow."
    documents = [m for m in stack.fake.sent[7:] if m["type"] == "document"]
    assert sorted(d["document"]["filename"] for d in documents) == ["charla-words.apkg", "charla-words.csv"]
    uploaded = dict(zip((name for name, _ in stack.fake.upload_names), (data for _, data in stack.fake.uploads),
                        strict=True))
    notes = anki_notes(uploaded["charla-words.apkg"])
    assert sorted(n[0] for n in notes) == ["agotado", "está", "la siesta", "madrugar"]
    assert ["madrugar", "to get up early", "Me gusta madrugar."] in notes
    table = list(csv.reader(io.StringIO(uploaded["charla-words.csv"].decode("utf-8-sig"))))
    assert table[0] == ["word", "translation", "example", "strength"]
    assert {r[0] for r in table[1:]} == {"madrugar", "está", "agotado", "la siesta"}


def anki_notes(package: bytes) -> list[list[str]]:
    """The notes' fields of an .apkg, read the way Anki imports it: the zip's collection.anki2 SQLite file."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.testzip() is None
        assert "collection.anki2" in archive.namelist()
        collection = archive.read("collection.anki2")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "collection.anki2"
        path.write_bytes(collection)
        db = sqlite3.connect(path)
        try:
            (models,) = db.execute("SELECT models FROM col").fetchone()
            assert str(wordbook.ANKI_MODEL_ID) in json.loads(models)
            (decks,) = db.execute("SELECT decks FROM col").fetchone()
            assert str(wordbook.ANKI_DECK_ID) in json.loads(decks)
            assert db.execute("SELECT count(*) FROM cards").fetchone() == (db.execute(
                "SELECT count(*) FROM notes").fetchone())
            return [str(flds).split("\x1f") for (flds,) in db.execute("SELECT flds FROM notes")]
        finally:
            db.close()


def test_the_deck_keeps_its_ids_and_note_guids() -> None:
    entry = wordbook.Entry("cansado", "tired", "Estoy cansado.", 0.4)
    first, second = wordbook.anki([entry], "Charla"), wordbook.anki([entry], "Charla")
    assert anki_notes(first) == anki_notes(second) == [["cansado", "tired", "Estoy cansado."]]
