"""Dashboard: alerts — channels (add, edit, delete, test), incidents open now and past, channel failures."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from webapp.blueprints.common import dashboard_blueprint, is_htmx, render_page_or_partial
from webapp.extensions import db
from webapp.models import AlertChannel
from webapp.schemas.alerts import ALERT_EVENTS
from webapp.services.alerts import channels, forms, incidents
from webapp.services.alerts.conditions import KIND_LABELS
from webapp.services.alerts.sending import pending_counts, recent_failures, send_test

bp = dashboard_blueprint("alerts", __name__, url_prefix="/alerts")
PAST_INCIDENTS = 50


def _channel(channel_id: int) -> AlertChannel:
    channel = db.session.get(AlertChannel, channel_id)
    if channel is None:
        abort(404)
    return channel


def page_context(**extra: Any) -> dict[str, Any]:
    open_now = incidents.list_incidents("open")
    past = incidents.list_incidents("closed", limit=PAST_INCIDENTS)
    return {
        "channels": channels.list_channels(), "pending": pending_counts(), "open_incidents": open_now,
        "past_incidents": past, "notices": incidents.notices_of([i.id for i in open_now + past]),
        "failures": recent_failures(), "kind_labels": KIND_LABELS, "test_results": {}, **extra,
    }


@bp.get("/")
def index():  # noqa: ANN201
    """The page; an htmx request (the 30-second poll) gets the live part alone."""
    return render_page_or_partial("alerts/index.html", "alerts/_live.html", **page_context())


def _form_page(form: forms.ChannelForm, channel: AlertChannel | None, status: int = 200):  # noqa: ANN202
    return render_template("alerts/form.html", form=form, channel=channel, events=ALERT_EVENTS,
                           kind_labels=KIND_LABELS), status


@bp.get("/new")
def new():  # noqa: ANN201
    return _form_page(forms.new_form(), None)


@bp.post("/new")
def create():  # noqa: ANN201
    channel, form = forms.save_new(request.form)
    if channel is None:
        return _form_page(form, None, 422)
    flash(f"{channel.name} is saved. Use “Test” to check that a message arrives.", "success")
    return redirect(url_for("alerts.index"))


@bp.get("/<int:channel_id>/edit")
def edit(channel_id: int):  # noqa: ANN201
    channel = _channel(channel_id)
    return _form_page(forms.edit_form(channel), channel)


@bp.post("/<int:channel_id>/edit")
def update(channel_id: int):  # noqa: ANN201
    channel = _channel(channel_id)
    form = forms.save_changes(channel, request.form)
    if form is not None:
        return _form_page(form, channel, 422)
    flash("Saved.", "success")
    return redirect(url_for("alerts.index"))


@bp.get("/<int:channel_id>/delete")
def confirm_delete(channel_id: int):  # noqa: ANN201
    return render_template("alerts/delete.html", channel=_channel(channel_id))


@bp.post("/<int:channel_id>/delete")
def delete(channel_id: int):  # noqa: ANN201
    channel = _channel(channel_id)
    name = channel.name
    channels.delete_channel(channel)
    flash(f"{name} deleted.", "success")
    return redirect(url_for("alerts.index"))


@bp.post("/<int:channel_id>/test")
def test(channel_id: int):  # noqa: ANN201
    """Send a test message now; htmx gets the result fragment for the channel's row, a plain post the page."""
    channel = _channel(channel_id)
    result = send_test(channel)
    if is_htmx():
        return render_template("alerts/_test_result.html", result=result, channel_id=channel_id)
    return render_template("alerts/index.html", **page_context(test_results={channel_id: result}))
