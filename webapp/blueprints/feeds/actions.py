"""What people do to a feed: save the form, build now, watch a build, publish a held build, rotate, delete.

Each action answers an htmx request with the fragment it changed (or an HX-Redirect), and a plain
form post with a page or a redirect, so everything works without JavaScript too. Destructive
actions are confirmed: by hx-confirm in the browser, else by a confirmation page.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.blueprints.common import is_htmx
from webapp.blueprints.feeds.pages import bp, build_status_context, form_page, get_feed
from webapp.extensions import db
from webapp.models import FeedBuild
from webapp.services.publishing.builds import BuildAlreadyRunning, publish_held, request_build
from webapp.services.publishing.feeds import delete_feed, feed_url, rotate_token
from webapp.services.publishing.forms import echo_form, save_changes, save_new
from webapp.services.publishing.preview import preview_form


def _to_detail(feed_id: int, message: str, category: str = "success") -> Response:
    flash(message, category)
    target = url_for("feeds.show", feed_id=feed_id)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _form_helpers(feed_id: int | None):  # noqa: ANN202
    """"Add rule", "Add override" and "Refresh preview" re-show the form without saving (no JavaScript)."""
    feed = get_feed(feed_id) if feed_id is not None else None
    for group in ("rules", "overrides"):
        if request.form.get(f"add_{group}"):
            return form_page(echo_form(request.form, feed, group), feed)
    if request.form.get("refresh_preview"):
        form = echo_form(request.form, feed)
        return form_page(form, feed, preview=preview_form(request.form))
    return None


@bp.post("/new")
def create():  # noqa: ANN201
    helper = _form_helpers(None)
    if helper is not None:
        return helper
    feed, form = save_new(request.form)
    if feed is None:
        return form_page(form, None, 422)
    flash(f"{feed.name} is saved. Build it now, then give the platform its URL.", "success")
    return redirect(url_for("feeds.show", feed_id=feed.id))


@bp.post("/<int:feed_id>/edit")
def update(feed_id: int):  # noqa: ANN201
    helper = _form_helpers(feed_id)
    if helper is not None:
        return helper
    feed = get_feed(feed_id)
    form = save_changes(feed, request.form)
    if form is not None:
        return form_page(form, feed, 422)
    flash("Saved. The next build uses the new settings.", "success")
    return redirect(url_for("feeds.show", feed_id=feed.id))


@bp.post("/<int:feed_id>/build")
def build(feed_id: int):  # noqa: ANN201
    feed = get_feed(feed_id)
    try:
        request_build(feed, trigger="manual")
        note = None
    except BuildAlreadyRunning as exc:
        note = f"Build #{exc.build.id} is already {exc.build.status}; it was not started twice."
    if is_htmx():
        return render_template("feeds/_build_status.html", **build_status_context(feed, note))
    return _to_detail(feed.id, note or "Build queued.", "warning" if note else "success")


@bp.get("/<int:feed_id>/builds/<int:build_id>/status")
def build_status(feed_id: int, build_id: int):  # noqa: ANN201
    """The polling fragment; once the build it watched has finished, reload the page for the report."""
    feed = get_feed(feed_id)
    watched = db.session.get(FeedBuild, build_id)
    if watched is None or watched.feed_id != feed.id:
        abort(404)
    if is_htmx() and watched.status not in ("queued", "running"):
        response = make_response("", 204)
        response.headers["HX-Refresh"] = "true"
        return response
    if not is_htmx():
        return redirect(url_for("feeds.show", feed_id=feed.id))
    return render_template("feeds/_build_status.html", **build_status_context(feed))


@bp.post("/<int:feed_id>/builds/<int:build_id>/publish")
def publish(feed_id: int, build_id: int):  # noqa: ANN201
    feed = get_feed(feed_id)
    held = db.session.get(FeedBuild, build_id)
    if held is None or held.feed_id != feed.id:
        abort(404)
    try:
        publish_held(held)
    except ValueError as exc:
        return _to_detail(feed.id, str(exc), "error")
    return _to_detail(feed.id, f"Build #{held.id} is published: the feed URL now serves its "
                               f"{held.items_written:,} items.")


def _confirm_page(feed_id: int, action: str):  # noqa: ANN202
    return render_template("feeds/confirm.html", feed=get_feed(feed_id), action=action)


@bp.post("/<int:feed_id>/rotate-token")
def rotate(feed_id: int):  # noqa: ANN201
    if request.form.get("confirm") != "1":
        return _confirm_page(feed_id, "rotate")
    feed = get_feed(feed_id)
    rotate_token(feed)
    return _to_detail(feed.id, f"New URL: {feed_url(feed)} — the old URL stops working now; "
                               "update it in the platform.")


@bp.get("/<int:feed_id>/delete")
def confirm_delete(feed_id: int):  # noqa: ANN201
    return _confirm_page(feed_id, "delete")


@bp.post("/<int:feed_id>/delete")
def delete(feed_id: int):  # noqa: ANN201
    if request.form.get("confirm") != "1":
        return _confirm_page(feed_id, "delete")
    feed = get_feed(feed_id)
    name = feed.name
    delete_feed(feed)
    flash(f"{name} deleted: its URL answers 404 from now on.", "success")
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url_for("feeds.index")
        return response
    return redirect(url_for("feeds.index"))
