"""`/admin`: the operator dashboard. Charts of activity, voice, latency, providers, revenue and queues;
learner pages (profile, error map, memories with their sources, payments, conversation, delete); dead
letters with replay; broadcasts; human takeover.

Protected by CHARLA_ADMIN_TOKEN: sent as `Authorization: Bearer <token>`, or entered once on /admin/login,
which sets an HttpOnly, SameSite=Strict cookie (a keyed hash of the token, never the token itself). Without
a token the dashboard is open only to the local console setup (WHATSAPP_PROVIDER=console).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from agents import erasure
from charla.core.bus import Bus
from charla.core.constants import CONSUMER_GROUPS, PREFIX
from charla.core.events import Template
from charla.core.runtime import Resources
from charla.ops import analytics, broadcasts, deadletters, export, takeover
from orchestrator import charts
from orchestrator.deps import Res
from payments import entitlements

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
COOKIE = "charla_admin"


class NeedsLogin(Exception):
    """An HTML request without a valid token: answered with a redirect to the login page."""


def _cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"charla-admin-session", hashlib.sha256).hexdigest()


async def operator(request: Request) -> str:
    """Who is operating: the dashboard's gate (see the module docstring)."""
    res: Resources = request.app.state.res
    token = res.settings.admin_token
    if token is None:
        if res.settings.whatsapp_provider == "console":
            return "local"
        raise HTTPException(503, "the dashboard is off: set CHARLA_ADMIN_TOKEN and restart the orchestrator")
    secret = token.get_secret_value()
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if bearer and hmac.compare_digest(bearer.encode(), secret.encode()):
        return "operator"
    cookie = request.cookies.get(COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), _cookie_value(secret).encode()):
        return "operator"
    if request.method == "GET":
        raise NeedsLogin
    raise HTTPException(401, "missing or wrong admin token")


Operator = Annotated[str, Depends(operator)]


def router() -> APIRouter:
    api = APIRouter(prefix="/admin", include_in_schema=False)
    api.add_api_route("/login", login_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/login", login, methods=["POST"])
    api.add_api_route("/logout", logout, methods=["POST"])
    api.add_api_route("", overview, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners", learner_list, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners/{learner_id}", learner_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners/{learner_id}/export", learner_export, methods=["GET"], response_class=Response)
    api.add_api_route("/learners/{learner_id}/delete", delete_learner, methods=["POST"])
    api.add_api_route("/learners/{learner_id}/take", take_over, methods=["POST"])
    api.add_api_route("/learners/{learner_id}/release", hand_back, methods=["POST"])
    api.add_api_route("/learners/{learner_id}/reply", operator_reply, methods=["POST"])
    api.add_api_route("/dead", dead_letters, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/dead/replay", replay_all, methods=["POST"])
    api.add_api_route("/dead/{dead_id}/replay", replay, methods=["POST"])
    api.add_api_route("/dead/{dead_id}/drop", drop, methods=["POST"])
    api.add_api_route("/broadcasts", broadcast_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/broadcasts", broadcast_send, methods=["POST"])
    api.add_api_route("/broadcasts/{broadcast_id}/cancel", broadcast_cancel, methods=["POST"])
    return api


def login_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/admin/login", status_code=303)


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {"flash": request.query_params.get("flash"),
                                                      "bad": request.query_params.get("bad"), **context})


def _back(path: str, flash: str, *, bad: bool = False) -> RedirectResponse:
    query = {"flash": flash, **({"bad": "1"} if bad else {})}
    return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)


async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "admin_login.html")


async def login(res: Res, token: Annotated[str, Form()]) -> Response:
    expected = res.settings.admin_token
    if expected is None or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        return _back("/admin/login", "That token is not CHARLA_ADMIN_TOKEN.", bad=True)
    answer = RedirectResponse("/admin", status_code=303)
    answer.set_cookie(COOKIE, _cookie_value(expected.get_secret_value()), httponly=True, samesite="strict",
                      secure=bool(res.settings.public_url and res.settings.public_url.startswith("https")),
                      max_age=12 * 3600, path="/admin")
    return answer


async def logout() -> Response:
    answer = RedirectResponse("/admin/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/admin")
    return answer


async def overview(request: Request, res: Res, who: Operator) -> HTMLResponse:
    async with res.pool.connection() as conn:
        data = await analytics.overview(conn)
    bus = Bus(res.redis)
    streams = [await bus.stats(stream) for stream in CONSUMER_GROUPS]
    lag = {s.stream.removeprefix(f"{PREFIX}:stream:"): float(sum((g.lag or 0) + g.pending for g in s.groups))
           for s in streams}
    dead = sum(s.dead_letters for s in streams)
    latency = {stage: {"p50": v["p50"], "p95": v["p95"]} for stage, v in data.latency.items()}
    svg = {
        "activity": charts.line(data.activity),
        "messages": charts.bars(data.messages, stacked=True),
        "voice": charts.line(data.voice, fill=True, percent=True),
        "latency": charts.grouped(latency, ("p50", "p95"), unit=" ms"),
        "providers": charts.share({k: v["turns"] for k, v in data.providers.items()}),
        "cost": charts.share({k: v["cost_usd"] for k, v in data.providers.items()}, unit=" $"),
        "revenue": charts.bars(data.revenue, secondary=("revenue",)),
        "queues": charts.horizontal(lag),
    }
    held = await takeover.held(res.redis)
    return _page(request, "admin_overview.html", data=data, charts={k: Markup(v) for k, v in svg.items()},  # noqa: S704 - pygal's own SVG
                 dead=dead, held=len(held), who=who, queued=sum(lag.values()))


async def learner_list(request: Request, res: Res, who: Operator, q: str = "") -> HTMLResponse:
    async with res.pool.connection() as conn:
        rows = await analytics.learners(conn, q[:100])
    return _page(request, "admin_learners.html", rows=rows, q=q, held=await takeover.held(res.redis))


async def learner_page(request: Request, learner_id: uuid.UUID, res: Res, who: Operator) -> HTMLResponse:
    async with res.pool.connection() as conn:
        found = await analytics.detail(conn, learner_id)
        lines = await takeover.conversation(conn, learner_id, limit=60) if found else []
    if found is None:
        raise HTTPException(404, "no such learner (deleted?)")
    errors = sorted(((k, v) for k, v in found.profile.get("errors", {}).items()),
                    key=lambda kv: -int(kv[1].get("count", 0)))
    error_chart = charts.horizontal({k: float(v.get("count", 0)) for k, v in errors[:12]}) if errors else ""
    return _page(request, "admin_learner.html", learner=found, errors=errors, lines=lines,
                 error_chart=Markup(error_chart),  # noqa: S704 - pygal's own SVG
                 holder=await takeover.holder(res.redis, learner_id), who=who)


async def learner_export(learner_id: uuid.UUID, res: Res, who: Operator) -> Response:
    """The learner's data export as a download: the file their "send me my data" sends (charla.ops.export)."""
    async with res.pool.connection() as conn:
        try:
            document = await export.export(conn, learner_id, redis=res.redis)
        except export.UnknownLearner:
            raise HTTPException(404, "no such learner (deleted?)") from None
    return Response(export.dumps(document), media_type=export.MEDIA_TYPE, headers=export.attachment_headers())


async def delete_learner(learner_id: uuid.UUID, res: Res, who: Operator,
                         confirm: Annotated[str, Form()] = "") -> Response:
    """Delete everything about a learner (as their own "delete my data" does): rows, session, caches."""
    if confirm != "DELETE":
        return _back(f"/admin/learners/{learner_id}", "Type DELETE to confirm.", bad=True)
    if not await erasure.erase_learner(res, learner_id):
        return _back("/admin/learners", "That learner was already deleted.", bad=True)
    return _back("/admin/learners", "The learner and everything about them was deleted.")


async def take_over(learner_id: uuid.UUID, res: Res, who: Operator) -> Response:
    await takeover.take(res.redis, learner_id, who)
    return _back(f"/admin/learners/{learner_id}", "You are answering this learner; the AI is paused.")


async def hand_back(learner_id: uuid.UUID, res: Res, who: Operator) -> Response:
    released = await takeover.release(res.redis, learner_id)
    return _back(f"/admin/learners/{learner_id}", "Handed back to the AI." if released else "Nobody held it.")


async def operator_reply(learner_id: uuid.UUID, res: Res, who: Operator, text: Annotated[str, Form()]) -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return _back(f"/admin/learners/{learner_id}", "Write 1 to 4096 characters.", bad=True)
    if await takeover.holder(res.redis, learner_id) is None:
        return _back(f"/admin/learners/{learner_id}", "Take over first, so the AI does not answer too.", bad=True)
    try:
        await takeover.reply(res, learner_id, text, who)
    except LookupError:
        return _back("/admin/learners", "That learner no longer exists.", bad=True)
    return _back(f"/admin/learners/{learner_id}", "Sent.")


async def dead_letters(request: Request, res: Res, who: Operator) -> HTMLResponse:
    found = await deadletters.listing(res.redis, limit=200)
    return _page(request, "admin_dead.html", letters=found, short=deadletters.short_learner,
                 headline=deadletters.headline)


async def replay(dead_id: str, res: Res, who: Operator) -> Response:
    try:
        new_id = await deadletters.replay(res.bus, dead_id)
    except deadletters.DeadLetterError as exc:
        return _back("/admin/dead", str(exc), bad=True)
    return _back("/admin/dead", f"Replayed as {new_id}.")


async def replay_all(res: Res, who: Operator) -> Response:
    count = await deadletters.replay_all(res.bus)
    return _back("/admin/dead", f"{count} event(s) replayed.")


async def drop(dead_id: str, res: Res, who: Operator) -> Response:
    dropped = await deadletters.drop(res.redis, dead_id)
    return _back("/admin/dead", "Dropped." if dropped else "It was already gone.", bad=not dropped)


async def broadcast_page(request: Request, res: Res, who: Operator) -> HTMLResponse:
    async with res.pool.connection() as conn:
        found = await broadcasts.listing(conn)
    return _page(request, "admin_broadcasts.html", broadcasts=[asdict(b) for b in found],
                 rate=res.settings.broadcast_rate, daily=res.settings.broadcast_daily_limit)


async def broadcast_send(res: Res, who: Operator, text: Annotated[str, Form()],
                         language: Annotated[str, Form()] = "", level: Annotated[str, Form()] = "",
                         plan: Annotated[str, Form()] = "", template: Annotated[str, Form()] = "",
                         preview: Annotated[str, Form()] = "") -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return _back("/admin/broadcasts", "Write the message (1 to 4096 characters).", bad=True)
    segment = broadcasts.Segment(language=language.strip().lower() or None, level=level.strip().upper() or None,
                                 paid={"paid": True, "free": False}.get(plan))
    options: dict[str, Any] = {"default_language": res.settings.default_target_language,
                               "blocked": await entitlements.blocked(res.redis)}
    async with res.pool.connection() as conn:
        if preview:
            count = await broadcasts.audience(conn, segment, **options)
            return _back("/admin/broadcasts", f"{count} learner(s) match; nothing was sent.")
        chosen = Template(name=template.strip(), language=res.settings.template_language,
                          body_params=[]) if template.strip() else None
        broadcast_id = await broadcasts.create(conn, segment, text, template=chosen, created_by=who,
                                               rate=res.settings.broadcast_rate, **options)
    return _back("/admin/broadcasts", f"Broadcast {broadcast_id} is going out at "
                                      f"{res.settings.broadcast_rate:g} messages/s.")


async def broadcast_cancel(broadcast_id: int, res: Res, who: Operator) -> Response:
    async with res.pool.connection() as conn:
        cancelled = await broadcasts.cancel(conn, broadcast_id)
    return _back("/admin/broadcasts", "Cancelled." if cancelled else "It had already finished.", bad=not cancelled)
