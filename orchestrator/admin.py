"""`/admin`: the operator dashboard. Charts of activity, voice, latency, providers, revenue and queues;
learner pages (profile, error map, memories with their sources, payments, conversation, delete); dead
letters with replay; broadcasts; human takeover; the audit log of who did what.

Operators are named by CHARLA_ADMIN_TOKENS (`alice:TOKEN,...`; CHARLA_ADMIN_TOKEN is operator `admin`). A
request authenticates with `Authorization: Bearer <token>`, or with the cookie of a server-side session
opened on /admin/login (see orchestrator.operators); every form carries the session's CSRF token. Without
any token the dashboard is open only to the local console setup (WHATSAPP_PROVIDER=console on a loopback
CHARLA_HOST), as operator `local`. Host and Origin are checked before any of this (orchestrator.guard).
The gate and the login pages are in orchestrator.admin_login, page rendering and flash messages in
orchestrator.admin_pages.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from agents import erasure
from charla.core import alerts
from charla.core.constants import CONSUMER_GROUPS, PREFIX
from charla.core.events import Template
from charla.core.runtime import Resources
from charla.ops import analytics, audit, broadcasts, cohorts, deadletters, export, takeover
from charla.progress import chart, goals
from charla.store.profile import Profile
from orchestrator import charts
from orchestrator.admin_login import Acting, Viewer, login, login_page, logout
from orchestrator.admin_pages import back, render
from orchestrator.deps import Res
from orchestrator.operators import Operator
from payments import entitlements

log = logging.getLogger(__name__)


_DEAD_ERRORS = {deadletters.NotFound: "dead-not-found", deadletters.AlreadyReplayed: "dead-already-replayed"}


def router() -> APIRouter:
    api = APIRouter(prefix="/admin", include_in_schema=False)
    api.add_api_route("/login", login_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/login", login, methods=["POST"])
    api.add_api_route("/logout", logout, methods=["POST"])
    api.add_api_route("", overview, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners", learner_list, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners/{learner_id}", learner_page, methods=["GET"], response_class=HTMLResponse)
    api.add_api_route("/learners/{learner_id}/progress.png", learner_chart, methods=["GET"], response_class=Response)
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


async def overview(request: Request, res: Res, who: Viewer) -> HTMLResponse:
    async with res.pool.connection() as conn:
        data = await analytics.overview(conn)
        cohort = await cohorts.cohorts(conn, datetime.now(UTC))
    bus = res.bus  # its partitions, hash-tagged on a cluster
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
    svg["retention"] = charts.horizontal({c.week: c.retention for c in cohort.by_signup}, unit=" %")
    held = await takeover.held(res.redis)
    return render(request, "admin_overview.html", data=data, charts={k: Markup(v) for k, v in svg.items()},  # noqa: S704 - pygal's own SVG
                 dead=dead, held=len(held), queued=sum(lag.values()), alerts=await alerts.current(res.redis),
                 cohort=cohort)


async def learner_list(request: Request, res: Res, who: Viewer, q: str = "") -> HTMLResponse:
    async with res.pool.connection() as conn:
        rows = await analytics.learners(conn, q[:100])
    return render(request, "admin_learners.html", rows=rows, q=q, held=await takeover.held(res.redis))


async def learner_page(request: Request, learner_id: uuid.UUID, res: Res, who: Viewer) -> HTMLResponse:
    async with res.pool.connection() as conn:
        found = await analytics.detail(conn, learner_id)
        lines = await takeover.conversation(conn, learner_id, limit=60) if found else []
    if found is None:
        raise HTTPException(404, "no such learner (deleted?)")
    errors = sorted(((k, v) for k, v in found.profile.get("errors", {}).items()),
                    key=lambda kv: -int(kv[1].get("count", 0)))
    error_chart = charts.horizontal({k: float(v.get("count", 0)) for k, v in errors[:12]}) if errors else ""
    return render(request, "admin_learner.html", learner=found, errors=errors, lines=lines,
                 error_chart=Markup(error_chart),  # noqa: S704 - pygal's own SVG
                 holder=await takeover.holder(res.redis, learner_id))


async def learner_chart(learner_id: uuid.UUID, res: Res, who: Viewer) -> Response:
    """The learner's progress chart: the image their weekly report sends (charla.progress.chart)."""
    async with res.pool.connection() as conn:
        row = await (await conn.execute("SELECT data FROM profiles WHERE learner_id = %s", (learner_id,))).fetchone()
    if row is None:
        raise HTTPException(404, "no such learner (deleted?)")
    png = await asyncio.to_thread(chart.render, Profile.model_validate(row[0]), goals.now(), "en", "Mistakes per week")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


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
        return back(f"/admin/learners/{learner_id}", "confirm-delete")
    if not await erasure.erase_learner(res, learner_id):
        return back("/admin/learners", "already-deleted")
    await _record(res, who, "delete-learner", str(learner_id))
    return back("/admin/learners", "deleted")


async def _record(res: Resources, who: Operator, action: audit.Action, target: str | None = None,
                  detail: str | None = None) -> None:
    """An audit row for an action with no transaction of its own (it changed Redis only)."""
    async with res.pool.connection() as conn:
        await audit.record(conn, who.name, action, target, detail)


async def take_over(learner_id: uuid.UUID, res: Res, who: Acting) -> Response:
    await takeover.take(res.redis, learner_id, who.name)
    await _record(res, who, "take-over", str(learner_id))
    return back(f"/admin/learners/{learner_id}", "taken")


async def hand_back(learner_id: uuid.UUID, res: Res, who: Acting) -> Response:
    released = await takeover.release(res.redis, learner_id)
    if released:
        await _record(res, who, "release", str(learner_id))
    return back(f"/admin/learners/{learner_id}", "released" if released else "not-held")


async def operator_reply(learner_id: uuid.UUID, res: Res, who: Acting, text: Annotated[str, Form()]) -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return back(f"/admin/learners/{learner_id}", "reply-length")
    if await takeover.holder(res.redis, learner_id) is None:
        return back(f"/admin/learners/{learner_id}", "take-first")
    try:
        await takeover.reply(res, learner_id, text, who.name)
    except LookupError:
        return back("/admin/learners", "learner-gone")
    return back(f"/admin/learners/{learner_id}", "sent")


async def dead_letters(request: Request, res: Res, who: Viewer) -> HTMLResponse:
    found = await deadletters.listing(res.redis, limit=200)
    return render(request, "admin_dead.html", letters=found, short=deadletters.short_learner,
                 headline=deadletters.headline)


async def replay(dead_id: str, res: Res, who: Acting) -> Response:
    try:
        new_id = await deadletters.replay(res.bus, dead_id)
    except deadletters.DeadLetterError as exc:
        return back("/admin/dead", _DEAD_ERRORS.get(type(exc), "dead-not-replayable"))
    await _record(res, who, "dead-replay", dead_id[:64], f"replayed as {new_id}")
    return back("/admin/dead", "replayed")


async def replay_all(res: Res, who: Acting) -> Response:
    count = await deadletters.replay_all(res.bus)
    await _record(res, who, "dead-replay-all", detail=f"{count} event(s)")
    return back("/admin/dead", "replayed-all", count)


async def drop(dead_id: str, res: Res, who: Acting) -> Response:
    dropped = await deadletters.drop(res.redis, dead_id)
    if dropped:
        await _record(res, who, "dead-drop", dead_id[:64])
    return back("/admin/dead", "dropped" if dropped else "already-gone")


async def broadcast_page(request: Request, res: Res, who: Viewer) -> HTMLResponse:
    async with res.pool.connection() as conn:
        found = await broadcasts.listing(conn)
    return render(request, "admin_broadcasts.html", broadcasts=[asdict(b) for b in found],
                 rate=res.settings.broadcast_rate, daily=res.settings.broadcast_daily_limit)


async def broadcast_send(res: Res, who: Acting, text: Annotated[str, Form()],
                         language: Annotated[str, Form()] = "", level: Annotated[str, Form()] = "",
                         plan: Annotated[str, Form()] = "", template: Annotated[str, Form()] = "",
                         preview: Annotated[str, Form()] = "") -> Response:
    text = text.strip()
    if not text or len(text) > 4096:
        return back("/admin/broadcasts", "broadcast-length")
    segment = broadcasts.Segment(language=language.strip().lower() or None, level=level.strip().upper() or None,
                                 paid={"paid": True, "free": False}.get(plan))
    options: dict[str, Any] = {"default_language": res.settings.default_target_language,
                               "blocked": await entitlements.blocked(res.redis)}
    async with res.pool.connection() as conn:
        if preview:
            count = await broadcasts.audience(conn, segment, **options)
            return back("/admin/broadcasts", "audience", count)
        chosen = Template(name=template.strip(), language=res.settings.template_language,
                          body_params=[]) if template.strip() else None
        async with conn.transaction():
            broadcast_id = await broadcasts.create(conn, segment, text, template=chosen, created_by=who.name,
                                                   rate=res.settings.broadcast_rate, **options)
            await audit.record(conn, who.name, "broadcast-send", str(broadcast_id), text[:80])
    return back("/admin/broadcasts", "broadcast-started", broadcast_id)


async def broadcast_cancel(broadcast_id: int, res: Res, who: Acting) -> Response:
    async with res.pool.connection() as conn, conn.transaction():
        cancelled = await broadcasts.cancel(conn, broadcast_id)
        if cancelled:
            await audit.record(conn, who.name, "broadcast-cancel", str(broadcast_id))
    return back("/admin/broadcasts", "cancelled" if cancelled else "finished")


async def audit_page(request: Request, res: Res, who: Viewer,
                     before: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    """Who did what, newest first, 50 a page (`before`: the next page starts below this row)."""
    async with res.pool.connection() as conn:
        entries = await audit.recent(conn, limit=50, before=before)
    return render(request, "admin_audit.html", entries=entries, more=entries[-1].id if len(entries) == 50 else None)
