"""What people do to a destination: pause, resume, test the connection, retry failed events, replay a window.

Each action answers an htmx request with the fragment it changed, and a plain form post with the
detail page (or a redirect), so everything works without JavaScript too.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.blueprints.common import is_htmx
from webapp.blueprints.destinations.pages import bp, get_destination, replay_context, show_context
from webapp.schemas.errors import ApiError
from webapp.services.delivery import replays
from webapp.services.delivery import retries as delivery_ops
from webapp.services.delivery.destinations import pause_destination, resume_destination, test_connection
from webapp.services.delivery.queries import failed_event, parse_utc_local
from webapp.services.platform_catalogs import runs as catalog_runs


def _to_detail(destination_id: int, message: str, category: str = "success") -> Response:
    flash(message, category)
    return redirect(url_for("destinations.show", destination_id=destination_id))


@bp.post("/<int:destination_id>/catalog/reconcile")
def reconcile_catalog(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    if not catalog_runs.reconciled(destination):
        abort(409, "this destination's catalog is not kept through a Catalog API")
    catalog_runs.request_reconcile(destination, "manual", full=request.form.get("full") == "1")
    return _to_detail(destination_id, "Reconcile queued: the platform's catalog is compared with this one and "
                                      "only the difference is sent.")


@bp.post("/<int:destination_id>/pause")
def pause(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    reason = request.form.get("reason", "").strip()[:500] or "paused by a user"
    pause_destination(destination, reason)
    return _to_detail(destination.id, "Paused. Events keep queueing and are sent when you resume.")


@bp.post("/<int:destination_id>/resume")
def resume(destination_id: int):  # noqa: ANN201
    destination = get_destination(destination_id)
    resume_destination(destination)
    return _to_detail(destination.id, "Resumed: the backlog drains at the rate limit.")


@bp.post("/<int:destination_id>/test")
def test(destination_id: int):  # noqa: ANN201
    """A harmless authenticated call; the fragment shows the platform's answer (secrets redacted)."""
    destination = get_destination(destination_id)
    try:
        result = test_connection(destination)
    except ValueError as exc:  # credentials that cannot be decrypted or are incomplete
        result = {"ok": False, "status": None, "duration_ms": 0, "message": str(exc), "url": ""}
    if is_htmx():
        return render_template("destinations/_test_result.html", result=result)
    return render_template("destinations/show.html", **show_context(destination, test_result=result))


def _time_field(name: str, problems: list[str]) -> datetime | None:
    try:
        return parse_utc_local(request.form.get(name))
    except ValueError:
        problems.append(f"“{request.form.get(name)}” is not a date and time (YYYY-MM-DDTHH:MM, UTC).")
        return None


@bp.post("/<int:destination_id>/retry-failed")
def retry_failed(destination_id: int):  # noqa: ANN201
    """First post counts (nothing changes); the confirm post (confirm=1) retries that range."""
    destination = get_destination(destination_id)
    problems: list[str] = []
    since, until = _time_field("since", problems), _time_field("until", problems)
    if not problems and since and until and since > until:
        problems.append("“From” is after “until”.")
    retry = {"since": request.form.get("since", ""), "until": request.form.get("until", ""),
             "error": " ".join(problems) or None}
    if not problems:
        if request.form.get("confirm") == "1":
            retry["retried"] = delivery_ops.retry_failed(destination.id, since, until)
        else:
            retry["count"] = delivery_ops.count_failed(destination.id, since, until)
    if is_htmx():
        return render_template("destinations/_retry_panel.html", destination=destination, retry=retry)
    return render_template("destinations/show.html", **show_context(destination, retry=retry))


@bp.post("/events/<int:event_id>/retry")
def retry_event(event_id: int):  # noqa: ANN201
    found = failed_event(event_id)
    if found is None:
        abort(404)
    notice = error = None
    try:
        delivery_ops.retry_event(found.event)
        notice = "Retry scheduled"
    except ValueError as exc:
        error = str(exc)
    if not is_htmx():
        return _to_detail(found.event.destination_id, error or f"Event {event_id}: retry scheduled.",
                          "error" if error else "success")
    return render_template("destinations/_failed_event.html", item=failed_event(event_id), notice=notice,
                           error=error)


@bp.post("/<int:destination_id>/replay")
def replay_window(destination_id: int):  # noqa: ANN201
    """First post counts (nothing is queued); the confirm post (confirm=1) starts the replay, whose progress
    fragment then polls itself."""
    destination = get_destination(destination_id)
    problems: list[str] = []
    since, until = _time_field("since", problems), _time_field("until", problems)
    replay = {"since": request.form.get("since", ""), "until": request.form.get("until", ""),
              "events": request.form.getlist("events"), "states": request.form.getlist("states"),
              "new_ids": request.form.get("new_ids") == "1"}
    if not problems and (since is None or until is None):
        problems.append("Give both times: “from” and “until”.")
    if not problems and since > until:
        problems.append("“From” is after “until”.")
    window = None
    if not problems:
        try:
            window = replays.parse_window({"since": since.isoformat(), "until": until.isoformat(),
                                           "events": replay["events"] or None, "states": replay["states"] or None,
                                           "new_ids": replay["new_ids"]})
        except ApiError as exc:
            problems += [f"{error['path']}: {error['message']}" for error in exc.errors]
    if window is not None:
        if request.form.get("confirm") == "1":
            try:
                replay["record"] = replays.replay_json(replays.start_replay(destination, window))
            except ApiError as exc:
                problems += [error["message"] for error in exc.errors]
        else:
            replay["counted"] = replays.count_window(destination.id, window)
    replay["error"] = " ".join(problems) or None
    if is_htmx():
        return render_template("destinations/_replay_panel.html", **replay_context(destination, replay))
    return render_template("destinations/show.html", **show_context(destination, replay=replay))


@bp.get("/<int:destination_id>/replays/<replay_id>")
def replay_progress(destination_id: int, replay_id: str):  # noqa: ANN201
    """One replay's progress (htmx polls it while it runs; a plain visit gets the page with it)."""
    destination = get_destination(destination_id)
    found = replays.get_replay(replay_id)
    if found is None or found.destination_id != destination.id:
        abort(404)
    record = replays.replay_json(found)
    if is_htmx():
        return render_template("destinations/_replay_progress.html", record=record)
    return render_template("destinations/show.html", **show_context(destination, replay={"record": record}))
