"""Destination pages: the list, the create/edit form, one destination's detail, delete with confirmation."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from webapp.blueprints.common import dashboard_blueprint, render_page_or_partial
from webapp.extensions import db
from webapp.models import Destination
from webapp.services.delivery import replays
from webapp.services.delivery.destinations import rate_limited_until
from webapp.services.delivery.forms import (
    CREDENTIAL_LABELS,
    KIND_BLURBS,
    RATE_LIMIT_LABELS,
    DestinationForm,
    edit_form,
    kind_infos,
    new_form,
    save_changes,
    save_new,
)
from webapp.services.delivery.queries import (
    destination_rows,
    event_counts,
    failed_events,
    kind_label,
    request_log,
)
from webapp.services.platform.crypto import decrypt_json
from webapp.services.platform_catalogs import runs as catalog_runs
from webapp.services.platform_catalogs import status as catalog_status

bp = dashboard_blueprint("destinations", __name__, url_prefix="/destinations")


def get_destination(destination_id: int) -> Destination:
    destination = db.session.get(Destination, destination_id)
    if destination is None:
        abort(404)
    return destination


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


@bp.get("/")
def index():  # noqa: ANN201
    return render_page_or_partial("destinations/index.html", "destinations/_table.html", rows=destination_rows())


def _form_page(form: DestinationForm, destination: Destination | None, status: int = 200):  # noqa: ANN202
    return render_template("destinations/form.html", form=form, destination=destination,
                           credential_labels=CREDENTIAL_LABELS, rate_limit_labels=RATE_LIMIT_LABELS), status


@bp.get("/new")
def new():  # noqa: ANN201
    infos = kind_infos()
    kind = request.args.get("kind", "")
    if kind not in infos:
        return render_template("destinations/choose_kind.html", infos=infos, blurbs=KIND_BLURBS,
                               credential_labels=CREDENTIAL_LABELS)
    return _form_page(new_form(kind), None)


@bp.post("/new")
def create():  # noqa: ANN201
    kind = request.form.get("kind", "")
    if kind not in kind_infos():
        abort(400, "unknown destination kind")
    destination, form = save_new(request.form, kind)
    if destination is None:
        return _form_page(form, None, 422)
    catalog_runs.catalog_switched(destination, "off")
    flash(f"{destination.name} is connected. Use “Test connection” to check the credentials.", "success")
    return redirect(url_for("destinations.show", destination_id=destination.id))


@bp.get("/<int:destination_id>/edit")
def edit(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    return _form_page(edit_form(destination), destination)


@bp.post("/<int:destination_id>/edit")
def update(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    before = destination.catalog
    form = save_changes(destination, request.form)
    if form is not None:
        return _form_page(form, destination, 422)
    catalog_runs.catalog_switched(destination, before)
    for warning in catalog_status.catalog_warnings(destination):
        flash(warning["message"], "warning")
    flash("Saved.", "success")
    return redirect(url_for("destinations.show", destination_id=destination.id))


def credential_names(destination: Destination) -> list[str]:
    """Which credentials are stored (names only: the values are never shown again)."""
    try:
        stored = decrypt_json(destination.credentials_encrypted)
    except ValueError:
        return []
    return sorted(name for name, value in stored.items() if value)


def show_context(destination: Destination, **extra: Any) -> dict[str, Any]:
    """Everything the detail page shows; actions pass their result (test, retry panel) in `extra`."""
    context = {
        "destination": destination, "label": kind_label(destination.kind),
        "info": kind_infos().get(destination.kind), "credentials_set": credential_names(destination),
        "counts": event_counts([destination.id])[destination.id], "failed": failed_events(destination.id),
        "requests": request_log(destination.id, after=_cursor("after"), before=_cursor("before")),
        "rate_limit_labels": RATE_LIMIT_LABELS, "test_result": None, "retry": {},
        "rate_limited_until": rate_limited_until(destination),
        "catalog": catalog_status.catalog_status(destination) if destination.catalog == "api" else None,
    }
    return context | replay_context(destination) | extra


def replay_context(destination: Destination, replay: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the "Replay a time window" panel shows: the form (its values, count or started replay in `replay`),
    the event names the destination takes, and its recent replays."""
    info = kind_infos().get(destination.kind)
    events = [name for name in (info.events if info else ()) if not destination.events or name in destination.events]
    recent = [replays.replay_json(found) for found in replays.recent_replays(destination.id)]
    return {"destination": destination, "replay": replay or {}, "recent_replays": recent,
            "replay_states": replays.REPLAYABLE_STATES, "replay_default_states": replays.DEFAULT_STATES,
            "replay_events": events}


@bp.get("/<int:destination_id>")
def show(destination_id: int):  # noqa: ANN201
    return render_template("destinations/show.html", **show_context(get_destination(destination_id)))


@bp.get("/<int:destination_id>/catalog")
def catalog_panel(destination_id: int):  # noqa: ANN201
    """The catalog panel alone (htmx polls it while a reconcile runs)."""
    destination = get_destination(destination_id)
    return render_template("destinations/_catalog.html", destination=destination,
                           catalog=catalog_status.catalog_status(destination))


@bp.get("/<int:destination_id>/requests")
def requests_log(destination_id: int):  # noqa: ANN201
    """The request log's pages (htmx swaps the section; a plain visit gets the whole detail page)."""
    destination = get_destination(destination_id)
    return render_page_or_partial("destinations/show.html", "destinations/_requests.html",
                                  **show_context(destination))


@bp.get("/<int:destination_id>/delete")
def confirm_delete(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    counts = event_counts([destination.id])[destination.id]
    return render_template("destinations/delete.html", destination=destination,
                           label=kind_label(destination.kind), event_total=sum(counts.values()),
                           undelivered=sum(counts[state] for state in ("pending", "in_flight", "retrying")))


@bp.post("/<int:destination_id>/delete")
def delete(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    name = destination.name
    db.session.delete(destination)
    db.session.commit()
    flash(f"{name} deleted, with its events and request log.", "success")
    return redirect(url_for("destinations.index"))
