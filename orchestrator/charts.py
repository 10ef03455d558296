"""The dashboard's charts: pygal renders each as an inline SVG string on the server (no JavaScript library,
no CDN: `js=[]` keeps pygal from linking its tooltip script). pygal still writes an inline config script into
each SVG, for that tooltip script only; it is cut out, as the dashboard's CSP refuses inline scripts."""

from __future__ import annotations

import re
from typing import Any

import pygal
from pygal.style import Style

from charla.ops.analytics import Series

STYLE = Style(background="transparent", plot_background="transparent", foreground="#111b21",
              foreground_strong="#111b21", foreground_subtle="#c8d0d4", opacity=".75", opacity_hover=".95",
              colors=("#25d366", "#075e54", "#53bdeb", "#f0a030", "#b3261e", "#8e6ad8"),
              font_family="system-ui, sans-serif", label_font_size=11, major_label_font_size=11,
              legend_font_size=12, value_font_size=10, tooltip_font_size=11)


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def _render(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _config(**extra: Any) -> dict[str, Any]:
    return {"style": STYLE, "js": [], "disable_xml_declaration": True, "width": 640, "height": 300,
            "legend_at_bottom": True, "legend_at_bottom_columns": 3, "margin": 12, "margin_bottom": 24,
            "print_values": False, "x_label_rotation": 0, "truncate_legend": 30, "truncate_label": -1,
            **extra}


def _labels(series: Series) -> list[str]:
    return [d.strftime("%d %b") for d in series.days]


def line(series: Series, *, fill: bool = False, percent: bool = False) -> str:
    chart = pygal.Line(**_config(fill=fill, dots_size=2, x_labels_major_every=max(1, len(series.days) // 6),
                                 show_minor_x_labels=False,
                                 range=(0, 100) if percent else None, include_x_axis=True))
    chart.x_labels = _labels(series)
    for name, values in series.lines.items():
        chart.add(name, values)
    return _render(chart)


def bars(series: Series, *, stacked: bool = False, secondary: tuple[str, ...] = ()) -> str:
    kind = pygal.StackedBar if stacked else pygal.Bar
    chart = kind(**_config(x_labels_major_every=max(1, len(series.days) // 6), show_minor_x_labels=False))
    chart.x_labels = _labels(series)
    for name, values in series.lines.items():
        chart.add(name, values, secondary=name in secondary)
    return _render(chart)


def grouped(groups: dict[str, dict[str, float]], keys: tuple[str, ...], *, unit: str = "") -> str:
    """One group of bars per entry of `groups` (e.g. per stage: p50 and p95)."""
    chart = pygal.Bar(**_config(value_formatter=lambda v: f"{v:,.0f}{unit}"))
    chart.x_labels = list(groups)
    for key in keys:
        chart.add(key, [groups[g].get(key, 0.0) for g in groups])
    return _render(chart)


def share(parts: dict[str, float], *, unit: str = "") -> str:
    chart = pygal.Pie(**_config(inner_radius=.45, value_formatter=lambda v: f"{v:,.2f}{unit}"))
    for name, value in parts.items():
        chart.add(name, value)
    if not parts:
        chart.add("none yet", 0)
    return _render(chart)


def horizontal(values: dict[str, float], *, unit: str = "") -> str:
    chart = pygal.HorizontalBar(**_config(height=max(160, 34 * len(values) + 80), show_legend=False,
                                          value_formatter=lambda v: f"{v:,.0f}{unit}", x_labels=[*values]))
    chart.add("", [*values.values()])
    return _render(chart)
