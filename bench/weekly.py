"""Benchmark R: the weekly progress report for 10,000 learners due in the same minute.

Learners, profiles (a daily goal, eight weeks of mistakes in five categories, a few words) and schedules are
loaded with COPY, each learner with a message in the last week and inside their 24-hour window; every slot
falls due within one minute. Baseline in the same run: the same dispatch with this week's report already sent
(practice prompts alone). Then the same slots again with the report due: the scheduler composes each report
(its week's counts from PostgreSQL, the text, the image message recorded) beside the prompt. Charts are drawn
apart from that pass (the dispatch's `keep_chart` stubbed there) and timed per learner on a sample: matplotlib
is CPU-bound, so the projected time of the last report with its chart adds that per-learner cost serially
(one scheduler process). The chart's baseline is the vocabulary flashcard (Pillow), rendered by the sender.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from agents.scheduler import PracticeScheduler
from bench.load import loadavg, progress, ratio
from bench.services import Services
from charla.core.runtime import Resources, open_resources
from charla.core.settings import Settings
from charla.progress import chart, deliver
from charla.store.profile import Example, Goal, Profile, week_of
from charla.tutor import flashcards

DUE = datetime(2031, 3, 3, 18, 0, tzinfo=UTC)  # a Monday, 19:00 in Madrid
CATEGORIES = ("ser_estar", "gender", "preterite", "subjunctive", "por_para")
SAMPLE = 40  # charts rendered to time them


def profile_of(n: int) -> Profile:
    p = Profile(timezone="Europe/Madrid", native_language="en", target_language="es", level_inferred="A2",
                goal=Goal(kind="messages", amount=3))
    p.streak.current = n % 20
    for week in range(8):
        for k, category in enumerate(CATEGORIES):
            for m in range((n + week + k) % 4):
                p.count_error(category, Example(original=f"{category} {m}", corrected="ok"),
                              DUE - timedelta(weeks=week, hours=k))
    for w in ("cansado", "agotado", "hambre"):
        p.add_word(w, "", DUE - timedelta(days=n % 9))
    return p


async def _load(db: str, learners: int) -> list[uuid.UUID]:
    progress(f"report: loading {learners} learners due at 19:00 Europe/Madrid")
    ids = [uuid.uuid4() for _ in range(learners)]
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("UPDATE schedules SET paused = true")  # other benchmarks' learners stay out of it
        async with conn.cursor().copy("COPY learners (id, wa_id, last_inbound_at, created_at) FROM STDIN") as copy:
            for n, learner_id in enumerate(ids):  # learners of a month (no report in a learner's first week)
                await copy.write_row((learner_id, f"3480{n:07d}", DUE - timedelta(hours=2), DUE - timedelta(days=30)))
        async with conn.cursor().copy("COPY profiles (learner_id, data) FROM STDIN") as copy:
            for n, learner_id in enumerate(ids):
                data = profile_of(n).model_dump(mode="json", exclude_defaults=True)
                await copy.write_row((learner_id, orjson.dumps(data).decode()))
        async with conn.cursor().copy(
                """COPY messages (learner_id, direction, provider, provider_message_id, kind, body, status, created_at)
                   FROM STDIN""") as copy:
            for n, learner_id in enumerate(ids):
                await copy.write_row((learner_id, "in", "meta", f"wamid.bench.report.{n}", "text", "Hola",
                                      "answered", DUE - timedelta(hours=2)))
        await conn.execute("ANALYZE")
    return ids


async def _slots(db: str, ids: list[uuid.UUID], *, report_sent: bool) -> None:
    """Fresh schedules due within the minute; this week's report marked sent or not."""
    week = week_of(DUE, "Europe/Madrid")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("DELETE FROM practice_prompts WHERE learner_id = ANY(%s)", (ids,))
        await conn.execute("DELETE FROM messages WHERE direction = 'out' AND learner_id = ANY(%s)", (ids,))
        await conn.execute("DELETE FROM schedules WHERE learner_id = ANY(%s)", (ids,))
        await conn.execute("UPDATE profiles SET data = data || jsonb_build_object('report_week', %s::text) "
                           "WHERE learner_id = ANY(%s)", (week if report_sent else "", ids))
        async with conn.cursor().copy(
                "COPY schedules (learner_id, rule, timezone, local_time, next_run_at) FROM STDIN") as copy:
            for n, learner_id in enumerate(ids):
                await copy.write_row((learner_id, "19:00 all", "Europe/Madrid", "19:00",
                                      DUE + timedelta(milliseconds=n * 60_000 // len(ids))))


@contextmanager
def _no_chart() -> Iterator[None]:
    """The dispatch without drawing charts (timed on their own)."""
    original = deliver.keep_chart

    async def token(*_: object, **__: object) -> str:
        return "bench"

    deliver.keep_chart = token
    try:
        yield
    finally:
        deliver.keep_chart = original


async def _dispatch(res: Resources) -> dict[str, float | int]:
    scheduler = PracticeScheduler(res, lambda: DUE + timedelta(minutes=1))
    started, sent = time.perf_counter(), 0
    while done := await scheduler.tick():
        sent += done
    elapsed = time.perf_counter() - started
    return {"messages": sent, "seconds": round(elapsed, 2), "last_after_due_minute_s": round(elapsed, 2)}


def _render_times(n: int) -> tuple[list[float], list[float]]:
    charts, cards = [], []
    for i in range(n):
        p = profile_of(i)
        started = time.perf_counter()
        chart.render(p, DUE, "en", "Mistakes per week")
        charts.append(time.perf_counter() - started)
        started = time.perf_counter()
        flashcards.render("cansado", "tired", "")
        cards.append(time.perf_counter() - started)
    return charts, cards


async def run(services: Services, learners: int = 10_000) -> dict[str, object]:
    before = loadavg()
    ids = await _load(services.database_url, learners)
    settings = Settings(DATABASE_URL=services.database_url, REDIS_URL=services.redis_url,
                        CHARLA_BUS_MAX_BACKLOG=10**7)
    async with open_resources(settings, pool_size=6) as res:
        await _slots(services.database_url, ids, report_sent=True)
        progress(f"report: baseline, {learners} practice prompts alone")
        baseline = await _dispatch(res)
        await _slots(services.database_url, ids, report_sent=False)
        progress(f"report: {learners} prompts, each with its weekly report")
        with _no_chart():
            reports = await _dispatch(res)
    progress(f"report: rendering {SAMPLE} charts and flashcards")
    _render_times(2)  # imports and font cache warm
    charts, cards = _render_times(SAMPLE)
    chart_ms, card_ms = statistics.median(charts) * 1000, statistics.median(cards) * 1000
    composed = int(reports["messages"]) - int(baseline["messages"])
    rate = composed / float(reports["seconds"])
    return {"what": (__doc__ or "").strip().split("\n\n", 1)[-1], "learners": learners,
            "baseline_prompts_alone": baseline, "with_reports": reports, "reports_composed": composed,
            "reports_per_s": round(rate, 1),
            "prompts_per_s_vs_baseline": ratio(reports["messages"] / reports["seconds"],
                                               baseline["messages"] / baseline["seconds"]),
            "chart_render_ms_p50": round(chart_ms, 1), "chart_render_ms_max": round(max(charts) * 1000, 1),
            "flashcard_render_ms_p50": round(card_ms, 1), "chart_vs_flashcard": ratio(chart_ms, card_ms),
            "projected_last_report_with_chart_s": round(float(reports["seconds"]) + composed * chart_ms / 1000, 1),
            "loadavg_before": before, "loadavg_after": loadavg()}
