"""The weekly report's chart: mistakes per category per week, as a PNG made to be read on a phone (1080 px
wide, large type, at most five categories), rendered server side with matplotlib's Agg backend."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator  # drawn without pyplot (Agg, no display, safe in worker threads)

from charla.store.profile import Profile, week_of
from charla.tutor.prompt import category_name

WIDTH_PX, HEIGHT_PX, DPI = 1080, 1080, 100  # square: a phone shows it whole
MAX_CATEGORIES = 5
WEEKS = 8
BACKGROUND = "#ffffff"
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd")


def weeks_until(at: datetime, timezone: str | None, n: int = WEEKS) -> list[str]:
    """The `n` ISO weeks ending with the one `at` falls in, oldest first."""
    return [week_of(at - timedelta(weeks=back), timezone) for back in range(n - 1, -1, -1)]


def series(p: Profile, at: datetime) -> tuple[list[str], dict[str, list[int]]]:
    """The weeks shown and, for the (at most five) categories with most mistakes in them, a count per week."""
    weeks = weeks_until(at, p.timezone)
    counts = {cat: [stat.weeks.get(w, 0) for w in weeks] for cat, stat in p.errors.items()}
    top = sorted((cat for cat in counts if sum(counts[cat])), key=lambda cat: (-sum(counts[cat]), cat))
    return weeks, {cat: counts[cat] for cat in top[:MAX_CATEGORIES]}


def render(p: Profile, at: datetime, native: str, title: str) -> bytes:
    """The chart as PNG bytes (an empty week range draws an empty grid with its title)."""
    weeks, shown = series(p, at)
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=BACKGROUND)
    _draw(figure, weeks, shown, native, title)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor=BACKGROUND)
    return out.getvalue()


def _draw(figure: Figure, weeks: list[str], shown: dict[str, list[int]], native: str, title: str) -> None:
    axes = figure.add_subplot()
    labels = [w.split("-")[1] for w in weeks]
    for colour, (category, counts) in zip(COLOURS, shown.items(), strict=False):
        axes.plot(labels, counts, color=colour, linewidth=6, marker="o", markersize=14,
                  label=category_name(category, native))
    axes.set_title(title, fontsize=34, pad=20)
    axes.tick_params(labelsize=22)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if shown:
        axes.legend(fontsize=22, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.27)  # fixed: tight_layout costs a draw
