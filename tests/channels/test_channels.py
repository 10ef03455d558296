"""One contract suite for every Channel (charla.channels.base): Meta against the fake Graph API, Twilio
against the fake Messages and Content APIs (through the real SDK), the console through Redis pub/sub. Each
test sends through the protocol and asserts what reached the (fake) provider, read back into one shape."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from charla.channels.base import Channel, Document, NotConfigured
from charla.channels.console import console_channel
from charla.channels.registry import TRAITS, open_channels, traits
from charla.core.errors import PermanentError
from charla.core.events import Choice, Identity, OutboundMessage, Template
from charla.core.runtime import open_resources
from tests.support.helpers import make_settings
from tests.support.servers import (
    FakeGraph,
    FakeTwilioContent,
    serve_fake_graph,
    serve_fake_twilio,
    serve_fake_twilio_content,
)

WA_ID = "16505551234"
PUBLIC = "https://charla.example"
PROVIDERS = ["meta", "twilio", "console"]
T = TypeVar("T")


@dataclass(frozen=True)
class Seen:
    """One message as it reached a provider: its kind, recipient, text, the choice ids it offered, and one
    detail per kind (an upload's type, a media URL, a template name, a file name)."""

    kind: str
    to: str
    text: str = ""
    choices: tuple[str, ...] = ()
    detail: str = ""


@dataclass
class Rig:
    channel: Channel
    seen: Callable[[int], Awaitable[list[Seen]]]  # what reached the provider, once at least n messages did
    reads: Callable[[int], Awaitable[list[str]]]  # message ids marked read, once at least n were


def meta_seen(body: dict[str, object], fake: FakeGraph) -> Seen:
    kind, to = str(body["type"]), str(body["to"])
    part = body[kind]
    assert isinstance(part, dict)
    if kind == "interactive":
        action = part["action"]
        rows = [b["reply"] for b in action.get("buttons", [])] or action.get("sections", [{}])[0].get("rows", [])
        return Seen("choices", to, part["body"]["text"], tuple(r["id"] for r in rows), part["type"])
    if kind == "audio":
        return Seen("voice", to, detail=fake.uploads[-1][0])
    if kind == "document":
        return Seen("document", to, part.get("caption", ""), detail=part["filename"])
    if kind == "template":
        return Seen("template", to, detail=part["name"])
    return Seen(kind, to, part.get("body", ""))


def twilio_seen(form: dict[str, str], content: FakeTwilioContent) -> Seen:
    to, sid = form["To"], form.get("ContentSid")
    if sid and "ContentVariables" in form:
        types = content.created[int(sid[-24:], 16)]["types"]
        offered = types.get("twilio/quick-reply", {}).get("actions") or types["twilio/list-picker"]["items"]
        return Seen("choices", to, json.loads(form["ContentVariables"])["1"], tuple(o["id"] for o in offered))
    if sid:
        return Seen("template", to, detail=sid)
    media = form.get("MediaUrl", "")
    if media:
        return Seen("voice" if media.endswith(".ogg") else "document", to, form.get("Body", ""), detail=media)
    return Seen("text", to, form["Body"])


def console_seen(event: dict[str, object], to: str) -> Seen:
    choices = tuple(str(c["id"]) for c in event.get("choices") or [])  # type: ignore[attr-defined]
    kind = "choices" if choices else str(event["kind"])
    detail = str(event.get("audio") or event.get("document") or "")
    return Seen(kind, to, str(event["text"]), choices, detail)


async def heard(pubsub: PubSub, got: list[dict[str, object]], n: int) -> list[dict[str, object]]:
    while len(got) < n:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10)
        assert message is not None, f"{n} console events expected, {len(got)} came"
        got.append(json.loads(message["data"]))
    return got


@pytest.fixture(params=PROVIDERS)
async def rig(request: pytest.FixtureRequest, db: str, default_redis_server: str,
              redis_default: Redis) -> AsyncIterator[Rig]:
    provider = str(request.param)
    async with AsyncExitStack() as stack:
        env = {"DATABASE_URL": db, "REDIS_URL": default_redis_server, "CHARLA_PUBLIC_URL": PUBLIC}
        if provider == "meta":
            fake, url = await stack.enter_async_context(serve_fake_graph())
            env |= {"WHATSAPP_ACCESS_TOKEN": "tok", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
                    "WHATSAPP_API_BASE_URL": url}
        elif provider == "twilio":
            twilio, url = await stack.enter_async_context(serve_fake_twilio())
            content, content_url = await stack.enter_async_context(serve_fake_twilio_content())
            env |= {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "secret", "TWILIO_API_BASE_URL": url,
                    "TWILIO_CONTENT_BASE_URL": content_url, "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886"}
        res = await stack.enter_async_context(open_resources(make_settings(**env), pool_size=2))
        channel = open_channels(res).channel_for(provider)
        if provider == "meta":
            yield Rig(channel, lambda n: _now([meta_seen(b, fake) for b in fake.sent]),
                      lambda n: _now([str(r["message_id"]) for r in fake.reads]))
        elif provider == "twilio":
            yield Rig(channel, lambda n: _now([twilio_seen(f, content) for f in twilio.sent]), lambda n: _now([]))
        else:
            pubsub = res.redis.pubsub()
            await pubsub.subscribe(console_channel(f"wa:{WA_ID}"))
            confirmed = await pubsub.get_message(timeout=10)  # subscribed before anything is published
            assert confirmed is not None
            assert confirmed["type"] == "subscribe"
            stack.push_async_callback(pubsub.aclose)
            events: list[dict[str, object]] = []

            async def seen(n: int) -> list[Seen]:
                got = await heard(pubsub, events, n)
                return [console_seen(e, console_channel(f"wa:{WA_ID}")) for e in got if "outbound_id" in e]

            async def reads(n: int) -> list[str]:
                return [str(e["message_id"]) for e in await heard(pubsub, events, n) if e["type"] == "outbound.read"]

            yield Rig(channel, seen, reads)


async def _now(value: T) -> T:
    return value


def message(rig: Rig, **fields: object) -> OutboundMessage:
    identity = Identity(wa_id=WA_ID, twilio=f"whatsapp:+{WA_ID}")
    return OutboundMessage.model_validate({"learner": identity.key(), "outbound_id": str(uuid.uuid4()),
                                           "provider": rig.channel.traits.provider, "to": identity, "text": "Hola",
                                           **fields})


async def test_text_reaches_the_learner_in_the_providers_address_format(rig: Rig) -> None:
    event = message(rig)
    sent = await rig.channel.send_text(event, "¿Qué tal?")
    assert sent
    assert await rig.seen(1) == [Seen("text", rig.channel.recipient(event), "¿Qué tal?")]


ADDRESS = {"meta": WA_ID, "twilio": f"whatsapp:+{WA_ID}", "console": console_channel(f"wa:{WA_ID}")}


async def test_each_channel_addresses_the_learner_in_its_own_format(rig: Rig) -> None:
    event = message(rig)
    assert rig.channel.recipient(event) == ADDRESS[rig.channel.traits.provider]
    bare = event.model_copy(update={"to": Identity(wa_id=WA_ID)})  # no Twilio address recorded yet
    assert rig.channel.recipient(bare) == ADDRESS[rig.channel.traits.provider]
    if rig.channel.traits.window:  # a real provider refuses a message with no address before sending it
        with pytest.raises(PermanentError):
            await rig.channel.send_text(event.model_copy(update={"to": Identity()}), "x")
        assert await rig.seen(0) == []


async def test_a_long_text_goes_in_parts_within_the_limit_that_join_back(rig: Rig) -> None:
    text = "Una frase corta. " * 400
    parts = await rig.channel.parts(message(rig, text=text))
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(len(p) <= rig.channel.limits.text for p in parts)


@pytest.mark.parametrize("offered", [[Choice(id="yes", title="Sí"), Choice(id="no", title="No")],
                                     [Choice(id=f"t{n}", title=f"Tema {n}", description="vocabulario")
                                      for n in range(5)]])
async def test_choices_arrive_with_their_ids_on_the_last_part(rig: Rig, offered: list[Choice]) -> None:
    event = message(rig, kind="choices", text="Elige uno", choices=offered, choices_button="Temas")
    parts = await rig.channel.parts(event)
    for part in parts[:-1]:
        await rig.channel.send_text(event, part)
    assert await rig.channel.send_choices(event, parts[-1])
    last = (await rig.seen(len(parts)))[-1]
    assert (last.kind, last.to, last.choices) == ("choices", rig.channel.recipient(event), tuple(c.id for c in offered))
    assert "Elige uno" in "".join(parts)


async def test_choices_no_message_can_carry_are_numbered_or_refused_never_cut(rig: Rig) -> None:
    """Beyond every list (11 rows): the numbered text where the channel has it, else a PermanentError before
    anything is sent; never a silently shortened set."""
    offered = [Choice(id=f"c{n}", title=f"Opción {n}") for n in range(11)]
    event = message(rig, kind="choices", text="Elige", choices=offered)
    parts = await rig.channel.parts(event)
    try:
        for part in parts[:-1]:
            await rig.channel.send_text(event, part)
        await rig.channel.send_choices(event, parts[-1])
    except PermanentError:
        assert await rig.seen(0) == []
        return
    shown = "".join(s.text for s in await rig.seen(len(parts)))
    assert all(f"{n + 1}. Opción {n}" in shown for n in range(11))


async def test_a_voice_note_arrives_as_audio(rig: Rig) -> None:
    event = message(rig, kind="voice", text="hola", audio="tok123")
    assert await rig.channel.send_voice(event, b"OggS\0fake opus")
    seen = await rig.seen(1)
    assert [(s.kind, s.to) for s in seen] == [("voice", rig.channel.recipient(event))]
    assert seen[0].detail in ("audio/ogg", f"{PUBLIC}/media/tok123.ogg", "tok123")


async def test_a_document_arrives_as_a_file_with_its_caption(rig: Rig) -> None:
    event = message(rig, kind="document", text="Your data", document="doc123")
    assert await rig.channel.send_document(event, Document(b'{"a": 1}', "charla-data.json", "application/json"))
    seen = await rig.seen(1)
    assert [(s.kind, s.to, s.text) for s in seen] == [("document", rig.channel.recipient(event), "Your data")]
    assert seen[0].detail in ("charla-data.json", f"{PUBLIC}/media/doc123.json", "doc123")


async def test_a_template_arrives_by_name_or_as_its_text_without_a_window(rig: Rig) -> None:
    event = message(rig, kind="template", text="¿Practicamos?")
    assert await rig.channel.send_template(event, Template(name="HXreengage", language="es"))
    expected = Seen("template", rig.channel.recipient(event), detail="HXreengage") if rig.channel.traits.window \
        else Seen("text", rig.channel.recipient(event), "¿Practicamos?")
    assert await rig.seen(1) == [expected]


async def test_mark_read_reaches_providers_that_show_it(rig: Rig) -> None:
    await rig.channel.mark_read(f"wa:{WA_ID}", "wamid.in1", typing=True)
    shows = rig.channel.traits.provider != "twilio"  # Twilio marks messages read by itself
    assert await rig.reads(1 if shows else 0) == (["wamid.in1"] if shows else [])
    assert await rig.seen(0) == []


async def test_an_unconfigured_provider_is_a_typed_error(redis_default: Redis, db: str,
                                                         default_redis_server: str) -> None:
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server)
    async with open_resources(settings, pool_size=1) as res:
        channels = open_channels(res)
        for provider in ("meta", "twilio", "telegram"):
            with pytest.raises(NotConfigured):
                channels.channel_for(provider)
        assert channels.channel_for("console").traits is TRAITS["console"]
    with pytest.raises(NotConfigured):
        traits("telegram")
    assert {p: traits(p).window for p in PROVIDERS} == {"meta": True, "twilio": True, "console": False}


# Comparisons with a WhatsApp provider's name that may stay, each with why: none of them chooses how to send.
ALLOWED = {
    ("charla/core/settings.py", "self.whatsapp_provider == 'console'"):
        "core sits below the channels (lint-imports) and cannot read their Traits: the development secrets are "
        "the settings' own statement of the console mode",
    ("charla/core/production.py", "settings.whatsapp_provider == 'console'"):
        "the production refusal of the console mode, in core for the same reason",
}
PRODUCT = ("charla", "orchestrator", "agents", "voice", "payments")


def provider_comparisons(root: Path) -> list[tuple[str, str]]:
    """(file, comparison) for every ==, !=, in or not in between something named *provider and a WhatsApp
    provider's name (LLM providers, also named `provider`, have other names and are not dispatch)."""
    found = []
    for path in sorted(p for package in PRODUCT for p in (root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare) and _names_provider(node) and _names_whatsapp(node):
                found.append((str(path.relative_to(root)), ast.unparse(node)))
    return found


def _names_provider(node: ast.Compare) -> bool:
    sides = [node.left, *node.comparators]
    return any(isinstance(s, ast.Name | ast.Attribute) and ast.unparse(s).endswith("provider") for s in sides)


def _names_whatsapp(node: ast.Compare) -> bool:
    constants = [c for s in [node.left, *node.comparators] for c in ast.walk(s) if isinstance(c, ast.Constant)]
    return any(c.value in PROVIDERS for c in constants)


def test_no_provider_dispatch_ladder_comes_back() -> None:
    """Providers are chosen through Channels.channel_for and described by Traits; a `provider == "meta"`
    in product code is a ladder starting again."""
    root = Path(__file__).resolve().parents[2]
    found = provider_comparisons(root)
    assert [f for f in found if f not in ALLOWED] == []
    assert len(found) <= 2, "a few allowed comparisons at most"


def test_the_guard_sees_a_ladder(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "x.py").write_text('if event.provider == "twilio":\n    pass\nif usage.provider != "canned":'
                                              '\n    pass\n')
    for package in PRODUCT[:-1]:
        (tmp_path / package).mkdir(exist_ok=True)
    (tmp_path / "payments").mkdir()
    assert provider_comparisons(tmp_path) == [("agents/x.py", "event.provider == 'twilio'")]
