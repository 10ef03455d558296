"""Learner-facing copy: every message id the code uses is in every shipped catalog, the translations keep
their placeholders and WhatsApp formatting, the compiled catalogs are current, and a Portuguese learner
reads Portuguese end to end."""

from __future__ import annotations

import io
import string
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from redis.asyncio import Redis

from charla.core import catalog
from charla.core.catalog import say
from tests.support.harness import Stack, running_stack, running_voice_stack
from tests.support.payloads import text_webhook
from tests.support.voice_kit import note, silence, voice_webhook

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "charla" / "locale"


def used_ids() -> set[str]:
    """The message ids in the product code, found as `make messages` finds them (babel.cfg, say and N_)."""
    with (LOCALE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords={"say": None, "N_": None})
    return {str(message) for _, _, message, _, _ in found}


def po(lang: str) -> Catalog:
    with (LOCALE / lang / "LC_MESSAGES" / "charla.po").open("rb") as f:
        return read_po(f, locale=lang)


def entries(lang: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in po(lang) if m.id}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_portuguese_ships_beside_english_and_spanish() -> None:
    assert catalog.shipped() == ("en", "es", "pt")


@pytest.mark.parametrize("lang", catalog.shipped())
def test_every_message_the_code_uses_is_translated_in_every_catalog(lang: str) -> None:
    used = used_ids()
    assert len(used) > 100  # the extractor really found the code's ids
    found = po(lang)
    assert {m.id for m in found if m.id and not m.string} == set()
    assert {m.id for m in found if m.id and m.fuzzy} == set()
    assert used - set(entries(lang)) == set(), f"missing in {lang}: run make messages and translate"
    assert set(entries(lang)) - used == set(), f"unused in {lang}: run make messages"


def test_the_committed_template_lists_what_the_code_uses() -> None:
    with (LOCALE / "charla.pot").open("rb") as f:
        assert {str(m.id) for m in read_po(f) if m.id} == used_ids()


@pytest.mark.parametrize("lang", [lang for lang in catalog.shipped() if lang != "en"])
def test_translations_keep_placeholders_and_whatsapp_formatting(lang: str) -> None:
    english, translated = entries("en"), entries(lang)
    for key, text in translated.items():
        assert placeholders(text) == placeholders(english[key]), key
        assert text.count("•") == english[key].count("•"), key
        assert text.count("*") == english[key].count("*"), key
        assert text.count("~") == english[key].count("~"), key
        assert text.startswith(" ") == english[key].startswith(" "), key  # sentences appended to another
        say(key, lang, **dict.fromkeys(placeholders(text), "x"))  # formats


@pytest.mark.parametrize("lang", catalog.shipped())
def test_compiled_catalogs_are_current(lang: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, po(lang))
    shipped = (LOCALE / lang / "LC_MESSAGES" / "charla.mo").read_bytes()
    assert compiled.getvalue() == shipped, f"{lang}: run make catalogs"


def test_unknown_languages_fall_back_to_english_and_regions_to_their_language() -> None:
    english = say("forget", "en")
    assert english.startswith("Delete everything")
    assert say("forget", "fr") == say("forget", "") == say("forget", "../../etc") == english
    assert say("forget", "pt_BR") == say("forget", "pt-BR") == say("forget", "pt")
    assert say("forget", "pt").startswith("Apago tudo")
    assert say("free_used", "pt", limit=20, link="https://x") == (
        "Você usou suas 20 mensagens grátis 🎉 Para continuar praticando comigo, assine aqui: https://x")


@pytest.fixture
def partial_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """English complete, Portuguese missing one entry."""
    for lang, messages in {"en": {"a": "A in English", "b": "B in English"}, "pt": {"a": "A em português"}}.items():
        built = Catalog(locale=lang, domain="charla")
        for key, text in messages.items():
            built.add(key, text)
        folder = tmp_path / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "charla.mo").open("wb") as f:
            write_mo(f, built)
    monkeypatch.setattr(catalog, "LOCALE_DIR", tmp_path)
    _clear()
    yield
    monkeypatch.undo()
    _clear()


def _clear() -> None:
    catalog.shipped.cache_clear()
    catalog._translations.cache_clear()


@pytest.mark.usefixtures("partial_catalogs")
def test_an_entry_a_catalog_lacks_is_said_in_english() -> None:
    assert say("a", "pt") == "A em português"
    assert say("b", "pt") == "B in English"


async def write(stack: Stack, text: str, wa_id: str = "5511900000001") -> None:
    assert (await stack.post(text_webhook(wa_id, f"wamid.copy-{text}", text))).status_code == 200


def bodies(stack: Stack, wa_id: str = "5511900000001") -> list[str]:
    return [str(m.get("text", {}).get("body") or m.get("interactive", {}).get("body", {}).get("text"))
            for m in stack.fake.sent if m["to"] == wa_id]


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def test_a_portuguese_learner_gets_portuguese_commands(stack: Stack) -> None:
    await write(stack, "My native language is Portuguese")
    await stack.fake.wait_for(1, seconds=10)
    await write(stack, "topics")
    await stack.fake.wait_for(2, seconds=10)
    await write(stack, "what are my mistakes?")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack) == ["Anotado: sua língua nativa é o português. Vou explicar tudo nela.",
                             "O que vamos praticar? Escolha um tema:",
                             "Ainda não anotei nenhum erro. Continue escrevendo!"]
    offered = stack.fake.sent[1]["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in offered][:3] == ["Verbos", "Comida", "Viagens"]


async def test_a_portuguese_learner_hears_about_a_voice_problem_in_portuguese(
        db: str, default_redis_server: str) -> None:
    async with running_voice_stack(db, default_redis_server, CHARLA_DEFAULT_NATIVE_LANGUAGE="pt") as stack:
        stack.fake.media["3001"] = (note(silence(1)), "audio/ogg; codecs=opus")
        stack.fake.expired.add("3001")
        await stack.post(voice_webhook("34610000099", "wamid.pt-voice", "3001"))
        await stack.fake.wait_for(1, seconds=60)
        assert bodies(stack, "34610000099") == [say("voice.expired", "pt")]
        assert bodies(stack, "34610000099")[0].startswith("Não consegui mais baixar esse áudio.")
