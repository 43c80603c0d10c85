"""Jinja filters shared by every template."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
from flask import Flask

from webapp.schemas.canonical.web_links import web_url


def timeago(value: datetime | None, now: datetime | None = None) -> str:
    """'3 min ago' / 'in 2 h': ages people read at a glance (the exact time is in the title)."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    amount, unit = int(seconds // (86400 * 30)), "mo"
    for limit, name, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600), (86400 * 60, "d", 86400)):
        if seconds < limit:
            amount, unit = int(seconds // size), name
            break
    if amount == 0 and unit == "s":
        return "just now"
    return f"in {amount} {unit}" if future else f"{amount} {unit} ago"


def money(value: Decimal | float | int | None, currency: str | None = None) -> str:
    if value is None:
        return "—"
    text = f"{Decimal(value):,.2f}"
    return f"{text} {currency}" if currency else text


def filesize(value: int | None) -> str:
    if not value:
        return "0 B"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def number(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def pretty_json(text: str | None) -> str:
    """Bodies are stored compact (smaller rows, cheaper to write); indent JSON for reading, leave
    anything else (a trimmed body, plain text) as it is."""
    if not text:
        return ""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


def pct(value: float | int | None, empty: float = 100) -> int:
    """A share as a whole percent 0-100 for the `pct-N` width classes (app.css): bars need no inline style,
    which the Content-Security-Policy refuses. None is `empty` (an unknown total shows a full, moving bar)."""
    number = empty if value is None else float(value)
    return max(0, min(100, round(number)))


def web_link(value: object) -> str | None:
    """A stored URL fit for href/src (absolute http/https), else None: orders stored before links were
    checked, and sources' product links, may hold `javascript:` or `data:` URLs that must not become links."""
    return web_url(value)


def init_app(app: Flask) -> None:
    app.add_template_filter(timeago)
    app.add_template_filter(money)
    app.add_template_filter(filesize)
    app.add_template_filter(pct)
    app.add_template_filter(number)
    app.add_template_global(pretty_json)
    app.add_template_filter(web_link)
    app.add_template_global(web_link)
