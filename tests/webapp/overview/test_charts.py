"""Server-side SVG charts: axis labels stay legible however many points there are."""

import re

from webapp.services.platform.charts import Series, line_chart


def _axis_labels(svg: str) -> list[str]:
    """The x-axis labels: the text row with the largest y (the y-axis labels sit above it)."""
    texts = [(float(y), label) for y, label in
             re.findall(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="(?:start|middle|end)">([^<]+)</text>', svg)]
    bottom = max(y for y, _ in texts)
    return [label for y, label in texts if y == bottom]


def test_thinned_axis_keeps_first_and_last_and_no_label_crowds_the_last():
    labels = [f"Nov {day:02}" for day in range(1, 31)]
    svg = line_chart(labels, [Series("USD", [float(i) for i in range(30)])], title="Revenue")
    shown = _axis_labels(svg)
    assert shown[0] == "Nov 01" and shown[-1] == "Nov 30"
    positions = [labels.index(label) for label in shown]
    gaps = [b - a for a, b in zip(positions, positions[1:], strict=False)]
    assert min(gaps) >= 3  # 30 points thinned to every third: never two labels a step or two apart


def test_short_axis_shows_every_label():
    labels = ["Mon", "Tue", "Wed"]
    svg = line_chart(labels, [Series("USD", [1.0, 2.0, 3.0])], title="Revenue")
    assert _axis_labels(svg) == labels


def test_long_date_labels_are_spaced_by_their_width():
    labels = ["2026-08-24", "2026-08-31", "2026-09-05", "2026-09-15", "2026-10-04", "2026-10-06",
              "2026-10-18", "2026-11-12", "2026-11-16", "2026-11-19"]
    svg = line_chart(labels, [Series("USD", [float(i) for i in range(10)])], title="Net LTV")
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(?:start|middle|end)">2026',
                                       svg)]
    widest = 10 * 7.0
    assert xs[0] < xs[-1] and len(xs) >= 3
    assert all(b - a >= 1.5 * widest for a, b in zip(xs, xs[1:], strict=False))
