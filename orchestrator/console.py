"""`/console`: a WhatsApp-like page for trying Charla without a WhatsApp account (WHATSAPP_PROVIDER=console).

Everything the page does goes through the real path: what the learner sends becomes a signed Meta-format
delivery handed to the webhook handler, a simulated checkout a signed Stripe event; replies come back from
the sender's console provider over server-sent events. The page loads nothing from outside the machine.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from charla.channels import console, media
from charla.core import constants as c
from charla.core.events import Identity
from charla.core.redis_client import text
from charla.core.runtime import Resources
from charla.store import learners
from charla.tutor import offline
from orchestrator.deps import Res
from payments import entitlements
from payments import webhook as stripe_events

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
HANDLE = r"^[A-Za-z0-9_.-]{1,32}$"
PRICE_CENTS, CURRENCY = 999, "eur"  # what a simulated checkout pays
_AUDIO_TYPES = ("audio/", "video/webm", "application/ogg")


class Sent(BaseModel):
    learner: str = Field(pattern=HANDLE)
    name: str | None = Field(None, max_length=64)


class SendText(Sent):
    text: str = Field(min_length=1, max_length=4096)


class Choose(Sent):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=256)
    context: str | None = Field(None, max_length=256)
    row: bool = False


class Status(Sent):
    message_id: str = Field(min_length=1, max_length=256)
    status: str = Field(pattern=r"^(delivered|read|played)$")


class Pay(BaseModel):
    learner: str | None = Field(None, pattern=HANDLE)
    reference: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class Clock(BaseModel):
    learner: str | None = Field(None, pattern=HANDLE)
    hours: float | None = Field(None, ge=0, le=24 * 366)  # forward by this much; None: to the next practice
    reset: bool = False


def router() -> APIRouter:
    """The console's page, its API and its live event stream."""
    api = APIRouter(prefix="/console", include_in_schema=False)
    api.add_api_route("", page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/pay", pay_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/api/info", info, methods=["GET"])
    api.add_api_route("/api/learners", learner_list, methods=["GET"])
    api.add_api_route("/api/history", history, methods=["GET"])
    api.add_api_route("/api/text", send_text, methods=["POST"])
    api.add_api_route("/api/voice", send_voice, methods=["POST"], form_limits={"max_files": 1, "max_fields": 8})
    api.add_api_route("/api/choose", choose, methods=["POST"])
    api.add_api_route("/api/status", status, methods=["POST"])
    api.add_api_route("/api/pay", pay, methods=["POST"])
    api.add_api_route("/api/clock", move_clock, methods=["POST"])
    api.add_api_route("/api/events", events, methods=["GET"])
    return api


async def page(request: Request, res: Res) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "console.html", {"llm": await llm_banner(res)})


async def pay_page(request: Request, client_reference_id: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
                   ) -> HTMLResponse:
    """The stand-in for Stripe's hosted checkout that console payment links open."""
    return TEMPLATES.TemplateResponse(request, "pay.html", {"reference": client_reference_id,
                                                            "price": f"{PRICE_CENTS / 100:.2f} {CURRENCY.upper()}"})


async def llm_banner(res: Resources) -> dict[str, Any]:
    """Which LLM answers, as the conversation agent announced it (empty until it has started)."""
    raw: dict[Any, Any] = await res.redis.hgetall(c.LLM_PROVIDERS_KEY)
    found = {text(k): json.loads(v) for k, v in raw.items()}
    order = [name for name in (*res.settings.llm_chain, *found) if name in found]
    chain = [{"name": name, "model": str(found[name].get("model", "")), "demo": bool(found[name].get("demo"))}
             for name in dict.fromkeys(order)]
    answering = [p for p in chain if p["name"] in res.settings.llm_chain] or chain  # the configured chain's
    offline_only = bool(answering) and all(p["demo"] for p in answering)
    return {"chain": chain, "demo": any(p["demo"] for p in chain), "offline": offline_only,
            "offline_mode": list(offline.MODE) if offline_only else []}


async def info(res: Res) -> dict[str, Any]:
    offset = float(await res.redis.get(c.CONSOLE_CLOCK_KEY) or 0)
    return {"llm": await llm_banner(res), "clock_offset_s": offset,
            "now": (datetime.now(UTC) + timedelta(seconds=offset)).isoformat()}


async def learner_list(res: Res) -> list[dict[str, Any]]:
    async with res.pool.connection() as conn:
        rows = await (await conn.execute(
            """SELECT l.wa_id, l.display_name, max(m.created_at) AS last_at
               FROM learners l JOIN messages m ON m.learner_id = l.id
               WHERE m.provider = 'console' AND l.wa_id IS NOT NULL
               GROUP BY l.id ORDER BY last_at DESC LIMIT 100""")).fetchall()
    return [{"handle": r[0], "name": r[1], "last_at": r[2].isoformat()} for r in rows]


async def history(res: Res, learner: Annotated[str, Query(pattern=HANDLE)]) -> list[dict[str, Any]]:
    """The learner's last 100 messages, oldest first, with their ticks."""
    async with res.pool.connection() as conn:
        learner_id = await learners.find(conn, Identity(wa_id=learner))
        if learner_id is None:
            return []
        rows = await (await conn.execute(
            """SELECT * FROM (
                 SELECT m.direction, m.kind, m.body, m.status, m.payload, m.created_at, m.provider_message_id,
                        (SELECT array_agg(p.provider_message_id ORDER BY p.part) FROM outbound_parts p
                          WHERE p.outbound_id = m.outbound_id) AS parts, m.id
                 FROM messages m WHERE m.learner_id = %s AND m.provider = 'console'
                 ORDER BY m.created_at DESC, m.id DESC LIMIT 100) recent
               ORDER BY created_at, id""", (learner_id,))).fetchall()  # rows of one transaction share created_at
    return [{"direction": r[0], "kind": r[1], "text": r[2], "status": r[3],
             "choices": (r[4] or {}).get("choices", []), "at": r[5].isoformat(),
             "id": r[6] if r[0] == "in" else ((r[7] or [None])[-1])} for r in rows]


async def _submit(res: Resources, body: bytes) -> Response:
    """Hand a signed delivery to the WhatsApp webhook handler, exactly as Meta's would arrive."""
    from orchestrator.app import accept_whatsapp  # the app imports this module

    secret = res.settings.whatsapp_secret()
    if secret is None:  # pragma: no cover - the console provider always has one
        raise HTTPException(404, "Meta-format webhooks are off")
    return await accept_whatsapp(res, body, console.signature(body, secret))


async def _sent(res: Resources, body: bytes, message_id: str) -> Response:
    answer = await _submit(res, body)
    if answer.status_code != 200:
        return answer
    return JSONResponse({"message_id": message_id, "status": "sent"})


async def send_text(sent: SendText, res: Res) -> Response:
    message_id = console.new_message_id()
    body = console.text_delivery(sent.learner, sent.text, name=sent.name, message_id=message_id)
    return await _sent(res, body, message_id)


async def send_voice(res: Res, learner: Annotated[str, Form(pattern=HANDLE)],
                     file: Annotated[UploadFile, File(description="a recorded or chosen audio file")],
                     name: Annotated[str | None, Form(max_length=64)] = None) -> Response:
    """A voice note recorded in the browser (WebM/Opus, Ogg) or an uploaded audio file."""
    mime = (file.content_type or "application/octet-stream").split(";")[0]
    if not mime.startswith(_AUDIO_TYPES):
        return JSONResponse({"error": f"{mime} is not audio: record a voice note or choose an audio file"},
                            status_code=415)
    limit = res.settings.max_media_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        return JSONResponse({"error": f"audio larger than {limit // (1024 * 1024)} MB"}, status_code=413)
    media_id = uuid.uuid4().hex
    await media.keep(res.redis, f"in:{media_id}", data)
    message_id = console.new_message_id()
    body = console.audio_delivery(learner, media_id, mime, name=name, message_id=message_id)
    return await _sent(res, body, message_id)


async def choose(chosen: Choose, res: Res) -> Response:
    message_id = console.new_message_id()
    body = console.choice_delivery(chosen.learner, chosen.id, chosen.title, chosen.context, row=chosen.row,
                                   name=chosen.name, message_id=message_id)
    return await _sent(res, body, message_id)


async def status(seen: Status, res: Res) -> Response:
    """The browser showed (or played) one of Charla's messages: a signed status webhook, like WhatsApp's."""
    answer = await _submit(res, console.status_delivery(seen.learner, seen.message_id, seen.status))
    return answer if answer.status_code != 200 else JSONResponse({"status": seen.status})


async def pay(paid: Pay, res: Res) -> Response:
    """Complete a simulated Payment Link checkout: a signed `checkout.session.completed`, through the Stripe
    webhook handler and the payment agent like a real one."""
    reference = paid.reference
    if reference is None and paid.learner is not None:
        async with res.pool.connection() as conn:
            learner_id = await learners.find(conn, Identity(wa_id=paid.learner))
        if learner_id is None:
            raise HTTPException(404, f"{paid.learner} has not written yet: send a message first")
        reference = entitlements.reference(learner_id)
    if reference is None:
        raise HTTPException(422, "give the learner or the payment link's client_reference_id")
    secret = res.settings.stripe_signing_secret()
    if secret is None:  # pragma: no cover - the console provider always has one
        raise HTTPException(404, "Stripe is not configured")
    body = console.checkout_completed(reference, amount_cents=PRICE_CENTS, currency=CURRENCY)
    answer = await stripe_events.receive(res, body, console.stripe_signature(body, secret))
    return answer if answer.status_code != 200 else JSONResponse({"paid": True, "reference": reference})


async def move_clock(moved: Clock, res: Res) -> Response:
    """Move the scheduler's clock forward (console only): by `hours`, or to just past the learner's next
    practice slot, so scheduled practice can be seen without waiting."""
    now = datetime.now(UTC)
    if moved.reset:
        offset = 0.0
    elif moved.hours is not None:
        offset = float(await res.redis.get(c.CONSOLE_CLOCK_KEY) or 0) + moved.hours * 3600
    else:
        due = await _next_practice(res, moved.learner)
        if due is None:
            return JSONResponse({"error": "no practice scheduled: ask Charla, e.g. “practice every day at 19:00”"},
                                status_code=409)
        offset = max(float(await res.redis.get(c.CONSOLE_CLOCK_KEY) or 0), (due - now).total_seconds() + 5)
    await res.redis.set(c.CONSOLE_CLOCK_KEY, str(offset))
    await res.redis.publish(c.CONSOLE_CLOCK_KEY, str(offset))
    return JSONResponse({"clock_offset_s": offset, "now": (now + timedelta(seconds=offset)).isoformat()})


async def _next_practice(res: Resources, handle: str | None) -> datetime | None:
    if handle is None:
        return None
    async with res.pool.connection() as conn:
        learner_id = await learners.find(conn, Identity(wa_id=handle))
        row = await (await conn.execute(
            "SELECT min(next_run_at) FROM schedules WHERE learner_id = %s AND NOT paused",
            (learner_id,))).fetchone() if learner_id else None
    return row[0] if row and row[0] else None


async def events(request: Request, res: Res, learner: Annotated[str, Query(pattern=HANDLE)]) -> EventSourceResponse:
    """Server-sent events: Charla's replies (`outbound.message`) and read receipts (`outbound.read`)."""
    return EventSourceResponse(_relay(res, console.console_channel(console.learner_key(learner)), request), ping=15)


async def _relay(res: Resources, channel: str, request: Request) -> AsyncIterator[dict[str, str]]:
    pubsub = res.redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        yield {"event": "ready", "data": "{}"}
        while not await request.is_disconnected():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                yield {"event": "charla", "data": text(message["data"])}
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
