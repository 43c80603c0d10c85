"""Feed pages: the list, the create/edit form with its live preview and row partials, one feed's detail."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template, request
from werkzeug.datastructures import MultiDict

from webapp.blueprints.common import dashboard_blueprint, render_page_or_partial
from webapp.extensions import db
from webapp.models import Feed
from webapp.services.platform.progress import get_progress
from webapp.services.publishing import queries
from webapp.services.publishing.feeds import feed_url, part_names
from webapp.services.publishing.forms import (
    OP_LABELS,
    OVERRIDE_FIELD_SUGGESTIONS,
    RULE_FIELD_SUGGESTIONS,
    VALUELESS_OPS,
    FeedForm,
    blank_override_row,
    blank_rule_row,
    edit_form,
    format_choices,
    new_form,
    next_row_index,
)
from webapp.services.publishing.forms import rule_row as rule_row_strings
from webapp.services.publishing.preview import FeedPreview, preview_form

bp = dashboard_blueprint("feeds", __name__, url_prefix="/feeds")


def get_feed(feed_id: int) -> Feed:
    feed = db.session.get(Feed, feed_id)
    if feed is None:
        abort(404)
    return feed


@bp.get("/")
def index():  # noqa: ANN201
    return render_page_or_partial("feeds/index.html", "feeds/_rows.html", rows=queries.feed_rows(),
                                  source_count=queries.source_count(), feed_url=feed_url,
                                  ua_short=queries.user_agent_short)


def form_context(form: FeedForm, feed: Feed | None, preview: FeedPreview | None = None) -> dict[str, Any]:
    return {"form": form, "feed": feed, "preview": preview, "sources": queries.source_choices(),
            "formats": format_choices(), "op_labels": OP_LABELS, "valueless_ops": VALUELESS_OPS,
            "rule_fields": RULE_FIELD_SUGGESTIONS, "override_fields": OVERRIDE_FIELD_SUGGESTIONS,
            "default_loss_percent": f"{current_app.config['FEED_MAX_LOSS_SHARE'] * 100:g}"}


def form_page(form: FeedForm, feed: Feed | None, status: int = 200, preview: FeedPreview | None = None):  # noqa: ANN201
    return render_template("feeds/form.html", **form_context(form, feed, preview)), status


@bp.get("/new")
def new():  # noqa: ANN201
    form = new_form()
    sources = queries.source_choices()
    if len(sources) == 1:
        form.values["source_ids"] = [sources[0].id]
    return form_page(form, None)


@bp.get("/<int:feed_id>/edit")
def edit(feed_id: int):  # noqa: ANN201
    feed = get_feed(feed_id)
    return form_page(edit_form(feed), feed)


@bp.post("/preview")
def preview():  # noqa: ANN201
    """The live preview panel for the form as typed (htmx posts the whole form on every change)."""
    return render_template("feeds/_preview.html", preview=preview_form(request.form), op_labels=OP_LABELS)


def _row_context() -> dict[str, Any]:
    return {"op_labels": OP_LABELS, "valueless_ops": VALUELESS_OPS, "errors": {}, "counts": {}}


@bp.get("/rule-row")
def rule_row():  # noqa: ANN201
    """One blank rule row numbered after the rows the form already has (htmx "Add rule")."""
    index = next_row_index(MultiDict(request.args), "rules")
    return render_template("feeds/_rule_row.html", row=blank_rule_row(), index=index, **_row_context())


@bp.get("/override-row")
def override_row():  # noqa: ANN201
    index = next_row_index(MultiDict(request.args), "overrides")
    return render_template("feeds/_override_row.html", row=blank_override_row(), index=index, error=None)


def build_status_context(feed: Feed, note: str | None = None) -> dict[str, Any]:
    build = queries.active_build(feed.id) or queries.latest_build(feed.id)
    progress = get_progress("feed", build.id) if build and build.status in ("queued", "running") else None
    return {"feed": feed, "build": build, "progress": progress, "note": note}


def show_context(feed: Feed) -> dict[str, Any]:
    published = feed.published_build
    names = part_names(feed)
    reported = queries.reported_build(feed.id)
    return build_status_context(feed) | {
        "format_label": queries.format_label(feed.format), "url": feed_url(feed), "published": published,
        "part_urls": [(name, feed_url(feed, name)) for name in names] if len(names) > 1 else [],
        "latest": queries.latest_build(feed.id), "reported": reported,
        "report": queries.report_view(reported) if reported else None,
        "history": queries.build_history(feed.id), "fetches": queries.fetch_log(feed.id),
        "fetch_summary": queries.fetch_summary(feed.id), "ua_short": queries.user_agent_short,
        "duration": queries.build_duration, "op_labels": OP_LABELS, "rule_row": rule_row_strings}


@bp.get("/<int:feed_id>")
def show(feed_id: int):  # noqa: ANN201
    return render_template("feeds/show.html", **show_context(get_feed(feed_id)))
