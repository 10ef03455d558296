"""`/admin`: the operator dashboard. Charts of activity, voice, latency, providers, revenue and queues;
learner pages (profile, error map, memories with their sources, payments, conversation, delete); dead
letters with replay; broadcasts; human takeover; the audit log of who did what.

Operators are named by CHARLA_ADMIN_TOKENS (`alice:TOKEN,...`; CHARLA_ADMIN_TOKEN is operator `admin`). A
request authenticates with `Authorization: Bearer <token>`, or with the cookie of a server-side session
opened on /admin/login (see orchestrator.operators); every form carries the session's CSRF token. Without
any token the dashboard is open only to the local console setup (WHATSAPP_PROVIDER=console on a loopback
CHARLA_HOST), as operator `local`. Host and Origin are checked before any of this (orchestrator.guard).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from agents import erasure
from charla.core import alerts
from charla.core.bus import Bus
from charla.core.constants import CONSUMER_GROUPS, PREFIX
from charla.core.events import Template
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.ops import analytics, audit, broadcasts, deadletters, export, takeover
from orchestrator import charts, operators
from orchestrator.deps import Res
from orchestrator.guard import SESSION_COOKIE
from orchestrator.operators import Operator
from payments import entitlements

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
LOGIN_COOKIE = "charla_login"  # the login form's own CSRF token (double submit: no session exists yet)

# Every message a page can show, by the key its redirect names (`?flash=key`, and `n=` for a count or an id):
# no text from the query reaches the page. (message, is it bad news)
FLASH: dict[str, tuple[str, bool]] = {
    "bad-token": ("That token belongs to no dashboard operator.", True),
    "form-expired": ("That form expired (or came from elsewhere): reload the page and try again.", True),
    "locked": ("Too many wrong tokens from here: wait a few minutes before trying again.", True),
    "logged-out": ("Logged out.", False),
    "confirm-delete": ("Type DELETE to confirm.", True),
    "already-deleted": ("That learner was already deleted.", True),
    "deleted": ("The learner and everything about them was deleted.", False),
    "taken": ("You are answering this learner; the AI is paused.", False),
    "released": ("Handed back to the AI.", False),
    "not-held": ("Nobody held it.", True),
    "reply-length": ("Write 1 to 4096 characters.", True),
    "take-first": ("Take over first, so the AI does not answer too.", True),
    "learner-gone": ("That learner no longer exists.", True),
    "sent": ("Sent.", False),
    "replayed": ("Replayed: the event is back on its stream.", False),
    "replayed-all": ("{n} event(s) replayed.", False),
    "dead-not-found": ("No such dead letter (replayed or dropped already?).", True),
    "dead-already-replayed": ("That event was replayed before; its leftover entry was removed.", True),
    "dead-not-replayable": ("That event cannot be replayed as it is (see `charla dead show`).", True),
    "dropped": ("Dropped.", False),
    "already-gone": ("It was already gone.", True),
    "broadcast-length": ("Write the message (1 to 4096 characters).", True),
    "audience": ("{n} learner(s) match; nothing was sent.", False),
    "broadcast-started": ("Broadcast #{n} is going out.", False),
    "cancelled": ("Cancelled.", False),
    "finished": ("It had already finished.", True),
}
_DEAD_ERRORS = {deadletters.NotFound: "dead-not-found", deadletters.AlreadyReplayed: "dead-already-replayed"}


class NeedsLogin(Exception):
    """An HTML request without a valid token: answered with a redirect to the login page."""


def _open_locally(settings: Settings) -> bool:
    return not settings.operators() and settings.whatsapp_provider == "console" and settings.loopback_only


async def operator(request: Request) -> Operator:
    """Who is operating: the dashboard's gate (see the module docstring). A GET in the open local setup
    gets a session of its own (operator `local`), so its forms carry a CSRF token like everyone's."""
    res: Resources = request.app.state.res
    bearer = request.headers.get("authorization")
    if bearer is not None:
        name = operators.by_token(res.settings, bearer.removeprefix("Bearer ").strip())
        if name is None:
            raise HTTPException(401, "wrong bearer token")
        return _remember(request, Operator(name))
    local = _open_locally(res.settings)
    if not res.settings.operators() and not local:
        raise HTTPException(503, "the dashboard is off: set CHARLA_ADMIN_TOKENS or CHARLA_ADMIN_TOKEN and restart "
                                 "the orchestrator (it is open without one only to the console on a loopback "
                                 "CHARLA_HOST)")
    found = await operators.session(res.redis, request.cookies.get(SESSION_COOKIE, ""))
    # Only sessions of operators configured now: removing a token (or setting the first) ends its sessions.
    if found is not None and found.name in ({"local"} if local else res.settings.operators()):
        return _remember(request, found)
    if request.method != "GET":
        raise HTTPException(401, "log in first (or send Authorization: Bearer <token>)")
    if not local:
        raise NeedsLogin
    session_id, opened = await operators.open_session(res.redis, "local", res.settings.admin_session_s)
    request.state.new_session = session_id
    return _remember(request, opened)


def _remember(request: Request, who: Operator) -> Operator:
    request.state.operator = who
    return who


async def acting(who: Annotated[Operator, Depends(operator)], csrf: Annotated[str, Form()] = "") -> Operator:
    """The operator of a POST, whose form carries its session's CSRF token (Bearer requests need none)."""
    if who.csrf is not None and not hmac.compare_digest(csrf.encode(), who.csrf.encode()):
        raise HTTPException(403, "missing or stale form token: reload the page and try again")
    return who


Viewer = Annotated[Operator, Depends(operator)]
Acting = Annotated[Operator, Depends(acting)]


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
    api.add_api_route("/audit", audit_page, methods=["GET"], response_class=HTMLResponse)
    return api


def login_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/admin/login", status_code=303)


def flash_message(key: str | None, n: str | None) -> tuple[str, bool] | None:
    """The fixed message a redirect named, with its count or id filled in; None for an unknown key or a
    parameter that is not a plain number."""
    found = FLASH.get(key or "")
    if found is None:
        return None
    text, bad = found
    if "{n}" in text:
        if n is None or not n.isdecimal() or len(n) > 12:
            return None
        text = text.replace("{n}", n)
    return text, bad


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    flash = flash_message(request.query_params.get("flash"), request.query_params.get("n"))
    who: Operator | None = getattr(request.state, "operator", None)
    signed_in = who is not None and who.csrf is not None and not _open_locally(request.app.state.res.settings)
    page = TEMPLATES.TemplateResponse(request, name, {"flash": flash, "who": who.name if who else None,
                                                      "csrf": who.csrf if who and who.csrf else "",
                                                      "signed_in": signed_in, **context}, status_code=status_code)
    if new_session := getattr(request.state, "new_session", None):
        _set_session_cookie(page, request.app.state.res.settings, new_session)
    return page


def _set_session_cookie(response: Response, settings: Settings, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=_secure(settings),
                        max_age=settings.admin_session_s, path="/admin")


def _secure(settings: Settings) -> bool:
    return bool(settings.public_url and settings.public_url.startswith("https"))


def _back(path: str, flash: str, n: int | None = None) -> RedirectResponse:
    assert flash in FLASH, flash  # a programming error, caught by the tests
    return RedirectResponse(f"{path}?flash={flash}" + (f"&n={n}" if n is not None else ""), status_code=303)


async def login_page(request: Request) -> Response:
    if _open_locally(request.app.state.res.settings):
        return RedirectResponse("/admin", status_code=303)  # nothing to log in with: the local user is in
    form_token = secrets.token_urlsafe(32)
    page = _page(request, "admin_login.html", login_csrf=form_token)
    page.set_cookie(LOGIN_COOKIE, form_token, httponly=True, samesite="strict",
                    secure=_secure(request.app.state.res.settings), max_age=3600, path="/admin")
    return page


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request, res: Res, token: Annotated[str, Form(max_length=512)],
                csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """Check the login form's token, then the rate limit, then the operator token; open a session."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _back("/admin/login", "form-expired")
    client = _client(request)
    if wait := await operators.locked_for(res.redis, res.settings, client):
        log.warning("dashboard login from %s refused: locked out for %d s", client, wait)
        page = _page(request, "admin_login.html", status_code=429, login_csrf=expected, flash=FLASH["locked"])
        page.headers["Retry-After"] = str(wait)
        return page
    name = operators.by_token(res.settings, token.strip())
    async with res.pool.connection() as conn:
        await audit.record(conn, name or "unknown", "login" if name else "login-failed", detail=f"from {client}")
    if name is None:
        await operators.failed(res.redis, res.settings, client)
        log.warning("dashboard login from %s: wrong token", client)
        return _back("/admin/login", "bad-token")
    await operators.succeeded(res.redis, client)
    session_id, _ = await operators.open_session(res.redis, name, res.settings.admin_session_s)
    log.info("dashboard login: %s from %s", name, client)
    answer = RedirectResponse("/admin", status_code=303)
    _set_session_cookie(answer, res.settings, session_id)
    answer.delete_cookie(LOGIN_COOKIE, path="/admin")
    return answer


async def logout(request: Request, res: Res, who: Acting) -> Response:
    await operators.close_session(res.redis, request.cookies.get(SESSION_COOKIE, ""))
    async with res.pool.connection() as conn:
        await audit.record(conn, who.name, "logout")
    answer = _back("/admin/login", "logged-out")
    answer.delete_cookie(SESSION_COOKIE, path="/admin")
    return answer


async def overview(request: Request, res: Res, who: Viewer) -> HTMLResponse:
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
                 dead=dead, held=len(held), queued=sum(lag.values()), alerts=await alerts.current(res.redis))


async def learner_list(request: Request, res: Res, who: Viewer, q: str = "") -> HTMLResponse:
    async with res.pool.connection() as conn:
        rows = await analytics.learners(conn, q[:100])
    return _page(request, "admin_learners.html", rows=rows, q=q, held=await takeover.held(res.redis))


async def learner_page(request: Request, learner_id: uuid.UUID, res: Res, who: Viewer) -> HTMLResponse:
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
                 holder=await takeover.holder(res.redis, learner_id))


async def learner_export(learner_id: uuid.UUID, res: Res, who: Viewer) -> Response:
    """The learner's data export as a download: the file their "send me my data" sends (charla.ops.export)."""
    async with res.pool.connection() as conn:
        try:
            document = await export.export(conn, learner_id, redis=res.redis)
        except export.UnknownLearner:
            raise HTTPException(404, "no such learner (deleted?)") from None
        await audit.record(conn, who.name, "export-learner", str(learner_id))
    return Response(export.dumps(document), media_type=export.MEDIA_TYPE, headers=export.attachment_headers())


async def delete_learner(learner_id: uuid.UUID, res: Res, who: Acting,
                         confirm: Annotated[str, Form()] = "") -> Response:
    """Delete everything about a learner (as their own "delete my data" does), through the one erasure path."""
    if confirm != "DELETE":
        return _back(f"/admin/learners/{learner_id}", "confirm-delete")
    if not await erasure.erase_learner(res, learner_id):
        return _back("/admin/learners", "already-deleted")
    await _record(res, who, "delete-learner", str(learner_id))
    return _back("/admin/learners", "deleted")


async def _record(res: Resources, who: Operator, action: audit.Action, target: str | None = None,
                  detail: str | None = None) -> None:
    """An audit row for an action with no transaction of its own (it changed Redis only)."""
    async with res.pool.connection() as conn:
        await audit.record(conn, who.name, action, target, detail)


async def take_over(learner_id: uuid.UUID, res: Res, who: Acting) -> Response:
    await takeover.take(res.redis, learner_id, who.name)
    await _record(res, who, "take-over", str(learner_id))
    return _back(f"/admin/learners/{learner_id}", "taken")


async def hand_back(learner_id: uuid.UUID, res: Res, who: Acting) -> Response:
    released = await takeover.release(res.redis, learner_id)
    if released:
        await _record(res, who, "release", str(learner_id))
    return _back(f"/admin/learners/{learner_id}", "released" if released else "not-held")


async def operator_reply(learner_id: uuid.UUID, res: Res, who: Acting, text: Annotated[str, Form()]) -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return _back(f"/admin/learners/{learner_id}", "reply-length")
    if await takeover.holder(res.redis, learner_id) is None:
        return _back(f"/admin/learners/{learner_id}", "take-first")
    try:
        await takeover.reply(res, learner_id, text, who.name)
    except LookupError:
        return _back("/admin/learners", "learner-gone")
    return _back(f"/admin/learners/{learner_id}", "sent")


async def dead_letters(request: Request, res: Res, who: Viewer) -> HTMLResponse:
    found = await deadletters.listing(res.redis, limit=200)
    return _page(request, "admin_dead.html", letters=found, short=deadletters.short_learner,
                 headline=deadletters.headline)


async def replay(dead_id: str, res: Res, who: Acting) -> Response:
    try:
        new_id = await deadletters.replay(res.bus, dead_id)
    except deadletters.DeadLetterError as exc:
        return _back("/admin/dead", _DEAD_ERRORS.get(type(exc), "dead-not-replayable"))
    await _record(res, who, "dead-replay", dead_id[:64], f"replayed as {new_id}")
    return _back("/admin/dead", "replayed")


async def replay_all(res: Res, who: Acting) -> Response:
    count = await deadletters.replay_all(res.bus)
    await _record(res, who, "dead-replay-all", detail=f"{count} event(s)")
    return _back("/admin/dead", "replayed-all", count)


async def drop(dead_id: str, res: Res, who: Acting) -> Response:
    dropped = await deadletters.drop(res.redis, dead_id)
    if dropped:
        await _record(res, who, "dead-drop", dead_id[:64])
    return _back("/admin/dead", "dropped" if dropped else "already-gone")


async def broadcast_page(request: Request, res: Res, who: Viewer) -> HTMLResponse:
    async with res.pool.connection() as conn:
        found = await broadcasts.listing(conn)
    return _page(request, "admin_broadcasts.html", broadcasts=[asdict(b) for b in found],
                 rate=res.settings.broadcast_rate, daily=res.settings.broadcast_daily_limit)


async def broadcast_send(res: Res, who: Acting, text: Annotated[str, Form()],
                         language: Annotated[str, Form()] = "", level: Annotated[str, Form()] = "",
                         plan: Annotated[str, Form()] = "", template: Annotated[str, Form()] = "",
                         preview: Annotated[str, Form()] = "") -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return _back("/admin/broadcasts", "broadcast-length")
    segment = broadcasts.Segment(language=language.strip().lower() or None, level=level.strip().upper() or None,
                                 paid={"paid": True, "free": False}.get(plan))
    options: dict[str, Any] = {"default_language": res.settings.default_target_language,
                               "blocked": await entitlements.blocked(res.redis)}
    async with res.pool.connection() as conn:
        if preview:
            count = await broadcasts.audience(conn, segment, **options)
            return _back("/admin/broadcasts", "audience", count)
        chosen = Template(name=template.strip(), language=res.settings.template_language,
                          body_params=[]) if template.strip() else None
        async with conn.transaction():
            broadcast_id = await broadcasts.create(conn, segment, text, template=chosen, created_by=who.name,
                                                   rate=res.settings.broadcast_rate, **options)
            await audit.record(conn, who.name, "broadcast-send", str(broadcast_id), text[:80])
    return _back("/admin/broadcasts", "broadcast-started", broadcast_id)


async def broadcast_cancel(broadcast_id: int, res: Res, who: Acting) -> Response:
    async with res.pool.connection() as conn, conn.transaction():
        cancelled = await broadcasts.cancel(conn, broadcast_id)
        if cancelled:
            await audit.record(conn, who.name, "broadcast-cancel", str(broadcast_id))
    return _back("/admin/broadcasts", "cancelled" if cancelled else "finished")


async def audit_page(request: Request, res: Res, who: Viewer,
                     before: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    """Who did what, newest first, 50 a page (`before`: the next page starts below this row)."""
    async with res.pool.connection() as conn:
        entries = await audit.recent(conn, limit=50, before=before)
    return _page(request, "admin_audit.html", entries=entries, more=entries[-1].id if len(entries) == 50 else None)
