"""The feed form's live preview: what the rules keep, and the first items in the chosen format.

Runs on every change of the form (debounced), before anything is saved, so a marketer sees the
effect of a rule while writing it. Per-rule match counts cost one more pass over the catalog, so
they are only computed for catalogs up to RULE_COUNT_LIMIT products.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from feeds.rules import compile_rules
from feeds.writers import FEED_FORMATS
from webapp.extensions import db
from webapp.models import Product
from webapp.services.publishing.feeds import preview
from webapp.services.publishing.forms import parse_rows, source_ids

RULE_COUNT_LIMIT = 200_000
SAMPLE_SIZE = 5


@dataclass
class FeedPreview:
    message: str | None = None          # why there is nothing to show (no source, bad format...)
    format_label: str = ""
    kept: int = 0
    dropped: int = 0
    text: str = ""
    sample_skipped: int = 0             # of the first kept products, how many the format rejects
    skipped: dict[str, int] = field(default_factory=dict)
    rules: list[dict[str, str]] = field(default_factory=list)   # the rule rows as typed
    rule_counts: dict[int, int] = field(default_factory=dict)   # rule row position → products matched
    rule_errors: dict[int, str] = field(default_factory=dict)
    override_errors: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.kept + self.dropped

    @property
    def skipped_reasons(self) -> list[tuple[str, int]]:
        return sorted(((skip_reason_text(key), count) for key, count in self.skipped.items()),
                      key=lambda entry: -entry[1])


def skip_reason_text(key: str) -> str:
    """`missing_required:title` → "missing required field title" (the report's keys, for people)."""
    reason, _, name = key.partition(":")
    texts = {"missing_required": "missing required field", "bad_url": "not an absolute http(s) URL in",
             "too_long": "too long for the platform:", "bad_number": "not a number in",
             "negative_price": "negative price", "duplicate_id": "duplicate id (already in the feed)"}
    text = texts.get(reason, reason.replace("_", " "))
    return f"{text} {name}".strip() if name else text


def preview_form(form: MultiDict) -> FeedPreview:
    rows = parse_rows(form)
    result = FeedPreview(rules=rows.rule_rows, rule_errors=rows.rule_errors, override_errors=rows.override_errors)
    fmt = form.get("format", "")
    if fmt not in FEED_FORMATS:
        result.message = "Choose a format to see the first items as the platform will get them."
        return result
    result.format_label = FEED_FORMATS[fmt].label
    ids = source_ids(form)
    if not ids:
        result.message = "Choose at least one source to see which products the feed will hold."
        return result
    with tempfile.TemporaryDirectory(prefix="shoprelay-preview-") as tmpdir:
        found = preview(fmt, ids, rows.rules, rows.overrides, Path(tmpdir), limit=SAMPLE_SIZE)
    result.kept, result.dropped, result.text = found["kept"], found["dropped"], found["text"]
    result.sample_skipped = found["items_skipped"]
    result.skipped = dict(found["report"].get("skipped") or {})
    if rows.rules and result.total <= RULE_COUNT_LIMIT:
        valid_positions = [pos for pos in range(len(rows.rule_rows)) if pos not in rows.rule_errors]
        counts = rule_match_counts(ids, rows.rules)
        result.rule_counts = dict(zip(valid_positions, counts, strict=True))
    return result


def rule_match_counts(source_ids: list[int], rules: list[dict[str, Any]]) -> list[int]:
    """How many products of the sources each rule matches on its own (one streamed pass)."""
    from webapp.services.publishing.builds import PRODUCT_COLUMNS

    tests = [compile_rules([{**rule, "action": "include"}]) for rule in rules]
    counts = [0] * len(tests)
    query = sa.select(*PRODUCT_COLUMNS).where(Product.source_id.in_(source_ids))
    for row in db.session.execute(query.execution_options(yield_per=5000)):
        item = row._mapping
        for position, test in enumerate(tests):
            if test(item):
                counts[position] += 1
    return counts
