"""Server-side SVG charts: no JavaScript library, readable without colour (labels, patterns, <title> on hover),
and every chart is paired with a table of its numbers by the template (see components/charts.html).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2f5bea", "#177245", "#b42318", "#8a5a00", "#6d28d9", "#0e7490")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "4 4")  # each series also differs by stroke pattern


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _fmt(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def sparkline(values: Sequence[float], *, width: int = 120, height: int = 32, label: str = "") -> str:
    """A tiny trend line for KPI cards; the last value is marked."""
    if not values:
        return ""
    top = max(max(values), 1e-9)
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    last_x, last_y = (len(values) - 1) * step, height - 2 - (values[-1] / top) * (height - 4)
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)} trend" '
            f'preserveAspectRatio="none"><title>{escape(label)}: '
            f'{", ".join(_fmt(v) for v in values)}</title>'
            f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" points="{points}"/>'
            f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="{PALETTE[0]}"/></svg>')


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 640,
              height: int = 220, unit: str = "") -> str:
    """Vertical bars with the value on hover and an axis maximum; long label sets are thinned."""
    if not values:
        return ""
    pad_left, pad_bottom, pad_top = 48, 28, 12
    inner_w, inner_h = width - pad_left - 8, height - pad_bottom - pad_top
    top = max(max(values), 1e-9)
    bar_w = inner_w / len(values)
    every = max(1, len(labels) // 10)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 8}" y2="{pad_top + inner_h}" '
             f'stroke="#cbd5e1"/>',
             f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end">{escape(_fmt(top))}{unit}</text>',
             f'<text x="{pad_left - 6}" y="{pad_top + inner_h}" text-anchor="end">0</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (value / top) * inner_h
        x = pad_left + i * bar_w + bar_w * 0.12
        parts.append(f'<rect x="{x:.1f}" y="{pad_top + inner_h - h:.1f}" width="{bar_w * 0.76:.1f}" '
                     f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(label)}: {escape(_fmt(value))}{unit}'
                     f"</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar_w * 0.38:.1f}" y="{height - 10}" text-anchor="middle">'
                         f"{escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


CHAR_WIDTH = 7.0  # px of an axis label character at the charts' font size, a little generous


def _label_stride(labels: Sequence[str], step: float) -> int:
    """Show every n-th x label: at most about eight, and never closer than one and a half label widths
    (the first and last labels are anchored at their edge, so a centred neighbour needs that much room)."""
    widest = max(len(label) for label in labels) * CHAR_WIDTH
    return max(1, len(labels) // 8, math.ceil((1.5 * widest + 8) / max(step, 1e-9)))


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, width: int = 640,
               height: int = 220) -> str:
    """One line per series, told apart by colour AND dash pattern, with a legend and hover titles."""
    if not labels or not series:
        return ""
    pad_left, pad_bottom, pad_top = 56, 44, 12
    inner_w, inner_h = width - pad_left - 12, height - pad_bottom - pad_top
    top = max((max(s.values) for s in series if s.values), default=0) or 1e-9
    step = inner_w / max(1, len(labels) - 1)
    every = _label_stride(labels, step)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 12}" y2="{pad_top + inner_h}" '
             f'stroke="#cbd5e1"/>',
             f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end">{escape(_fmt(top))}</text>',
             f'<text x="{pad_left - 6}" y="{pad_top + inner_h}" text-anchor="end">0</text>']
    last = len(labels) - 1
    for i, label in enumerate(labels):
        # Thinned labels every `every` points, and always the last: a thinned one too close to it is dropped.
        if i == last or (i % every == 0 and last - i >= every):
            anchor = "end" if i == len(labels) - 1 and len(labels) > 1 else "start" if i == 0 else "middle"
            parts.append(f'<text x="{pad_left + i * step:.1f}" y="{pad_top + inner_h + 16}" '
                         f'text-anchor="{anchor}">{escape(label)}</text>')
    for n, item in enumerate(series):
        colour, dash = PALETTE[n % len(PALETTE)], DASHES[n % len(DASHES)]
        points = [(pad_left + i * step, pad_top + inner_h - (v / top) * inner_h) for i, v in enumerate(item.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" '
                     f'points="{path}"><title>{escape(item.name)}</title></polyline>')
        for (x, y), label, value in zip(points, labels, item.values, strict=False):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(item.name)} '
                         f"{escape(label)}: {escape(_fmt(value))}</title></circle>")
        legend_x = pad_left + n * 150
        parts.append(f'<line x1="{legend_x}" y1="{height - 8}" x2="{legend_x + 24}" y2="{height - 8}" '
                     f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
                     f'<text x="{legend_x + 30}" y="{height - 4}">{escape(item.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str, width: int = 640,
                 height: int = 220, colours: Sequence[str] = PALETTE) -> str:
    """Horizontal 100 % bars (e.g. delivered / failing / dead per destination) with text shares.

    `colours` lets a caller give series their conventional meaning (e.g. failing amber, dead red).
    """
    if not labels:
        return ""
    row_h = 30
    height = max(height, 40 + row_h * len(labels))
    label_w, inner_w = 160, width - 160 - 60
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for row, label in enumerate(labels):
        y = 8 + row * row_h
        total = sum(s.values[row] for s in series) or 1
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        x = label_w
        for n, item in enumerate(series):
            share = item.values[row] / total
            w = share * inner_w
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" '
                             f'fill="{colours[n % len(colours)]}"><title>{escape(label)} {escape(item.name)}: '
                             f"{escape(_fmt(item.values[row]))} ({share:.0%})</title></rect>")
            x += w
        first = series[0].values[row] / total
        parts.append(f'<text x="{label_w + inner_w + 6}" y="{y + 15}">{first:.0%}</text>')
    legend_y = 8 + len(labels) * row_h + 14
    for n, item in enumerate(series):
        parts.append(f'<rect x="{label_w + n * 120}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{colours[n % len(colours)]}"/><text x="{label_w + n * 120 + 14}" '
                     f'y="{legend_y}">{escape(item.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
