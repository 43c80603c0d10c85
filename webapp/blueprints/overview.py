"""Dashboard: the overview — what needs attention first, then KPIs, charts, catalog freshness, workers."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from webapp.blueprints.common import dashboard_blueprint, is_htmx
from webapp.services.overview.attention import attention_items
from webapp.services.overview.catalog_freshness import feed_freshness, source_freshness
from webapp.services.overview.onboarding import is_empty_instance, setup_steps
from webapp.services.overview.revenue_by_day import revenue_by_day
from webapp.services.overview.runtime_status import runtime_status
from webapp.services.overview.stats import window_stats
from webapp.services.platform import charts
from webapp.services.platform.time_buckets import DEFAULT_WINDOW, make_window, without_jit
from webapp.services.platform_catalogs import status as catalog_status

bp = dashboard_blueprint("overview", __name__)

WINDOW_CHOICES = (("24h", "Last 24 h"), ("7d", "Last 7 days"))
# Delivered / failing / dead in their usual meaning: blue, amber, red (the table beside it has the numbers).
DELIVERY_COLOURS = (charts.PALETTE[0], charts.PALETTE[3], charts.PALETTE[2])


def duration(seconds: float | None) -> str:
    """Latency for people: '850 ms', '4.2 s', '3.5 min', '2.1 h'."""
    if seconds is None:
        return "—"
    for limit, size, unit in ((1, 0.001, "ms"), (60, 1, "s"), (3600, 60, "min")):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}" if unit == "ms" else f"{seconds / size:.1f} {unit}"
    return f"{seconds / 3600:.1f} h"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


@bp.context_processor
def _chart_helpers() -> dict[str, Any]:
    return {"sparkline": charts.sparkline, "line_chart": charts.line_chart, "stacked_bars": charts.stacked_bars,
            "Series": charts.Series, "duration": duration, "percent": percent, "window_choices": WINDOW_CHOICES,
            "delivery_colours": DELIVERY_COLOURS}


@bp.get("/")
def index():  # noqa: ANN201
    chosen = request.args.get("window", DEFAULT_WINDOW)
    # Only the toggle's windows: the 30-day one feeds the revenue chart, not the KPI cards.
    window = make_window(chosen if chosen in dict(WINDOW_CHOICES) else DEFAULT_WINDOW)
    without_jit()
    # The 24 h / 7 d toggle swaps only the window's fragment; a history restore needs the whole page.
    if is_htmx() and request.headers.get("HX-History-Restore-Request") != "true":
        return render_template("overview/_window.html", stats=window_stats(window))
    runtime = runtime_status()
    sources, feeds = source_freshness(), feed_freshness()
    steps = setup_steps()
    context: dict[str, Any] = {
        "attention": attention_items(runtime, sources, feeds), "runtime": runtime, "sources": sources,
        "feeds": feeds, "klaviyo_catalogs": catalog_status.klaviyo_catalogs(), "steps": steps, "empty": is_empty_instance(steps), "window": window,
    }
    if not context["empty"]:
        context["stats"] = window_stats(window)
        days = make_window("30d", runtime.now)
        context["revenue_days"], context["revenue_labels"] = revenue_by_day(days), days.labels()
        context["revenue_series"] = [charts.Series(currency, [float(v) for v in values])
                                     for currency, values in context["revenue_days"].items()]
    return render_template("overview/index.html", **context)
