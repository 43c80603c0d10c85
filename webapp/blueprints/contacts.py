"""Dashboard: contacts with lifetime value and RFM segments, the CSV export, and one contact's page."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, stream_with_context, url_for

from webapp.blueprints.common import dashboard_blueprint, is_htmx, render_page_or_partial
from webapp.extensions import db
from webapp.models import Contact, utcnow
from webapp.security.roles import can
from webapp.services.contacts import erasure, erasure_recovery, insights
from webapp.services.contacts.consent import consent_state
from webapp.services.contacts.consent_views import consent_deliveries
from webapp.services.contacts.export import export_csv
from webapp.services.contacts.ltv import ltv_json
from webapp.services.contacts.queries import COLUMNS, ContactFilters, any_contacts, list_contacts
from webapp.services.contacts.rfm import SEGMENTS, refresh_rfm
from webapp.services.contacts.views import rfm_json
from webapp.services.onsite.activity import contact_onsite_events
from webapp.services.platform.charts import bar_chart, line_chart

bp = dashboard_blueprint("contacts", __name__, url_prefix="/contacts")


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


def _overview() -> dict:
    """Segment counts, the RFM grid and the LTV distribution shown above the list (cached for a minute)."""
    summary = insights.summary()
    buckets, currency = summary.buckets, summary.currency
    chart = bar_chart([label for label, _ in buckets], [count for _, count in buckets],
                      title=f"Contacts by net lifetime value ({currency})") if buckets else ""
    return {"segments": summary.segments, "grid": summary.grid, "currency": currency, "buckets": buckets,
            "ltv_chart": chart, "summary_as_of": summary.as_of,
            "summary_ttl": insights.SUMMARY_TTL_SECONDS}


@bp.get("/")
def index():  # noqa: ANN201
    filters = ContactFilters.from_args(request.args)
    results = list_contacts(filters, after=_int_arg("after"), before=_int_arg("before"))
    context = {"results": results, "filters": filters, "columns": COLUMNS, "segment_names": [s.name for s in SEGMENTS],
               "has_contacts": bool(results.rows) or any_contacts()}
    if not is_htmx() and context["has_contacts"]:
        context |= _overview()
    return render_page_or_partial("contacts/index.html", "contacts/_rows.html", **context)


@bp.get("/export.csv")
def export():  # noqa: ANN201
    """Every matching contact, one row per currency, streamed so a large base does not fill memory."""
    filters = ContactFilters.from_args(request.args)
    filename = f"contacts-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(stream_with_context(export_csv(filters)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/rfm/refresh")
def refresh():  # noqa: ANN201
    scored = refresh_rfm()
    insights.forget_summary()
    flash(f"RFM scores refreshed for {scored:,} contact{'s' if scored != 1 else ''}.", "success")
    return redirect(url_for("contacts.index"))


@bp.get("/<int:contact_id>")
def show(contact_id: int):  # noqa: ANN201
    """The contact's page; an htmx request gets the page body without the layout."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    merged = insights.merged_contacts(contact)
    ids = [contact.id, *(m.id for m in merged)]
    timeline = insights.ltv_over_time(contact.id)
    orders, orders_total = insights.contact_orders(contact.id)
    segment_rule = next((s.rule for s in SEGMENTS if s.name == contact.rfm_segment), None)
    merged_into = db.session.get(Contact, contact.merged_into_id) if contact.merged_into_id else None
    record = erasure.get_erasure(request.args["erasure"]) if request.args.get("erasure") else None
    if record is None and contact.erased_at is not None:  # one that failed half-way stays in view until finished
        record = erasure_recovery.failed_unfinished_of(contact.id)
    return render_page_or_partial(
        "contacts/show.html", "contacts/_show_body.html", contact=contact, merged=merged,
        consent=consent_state(contact), consent_deliveries=consent_deliveries(ids),
        erasure=record, destinations=erasure.destination_states(record) if record else [],
        may_erase=can("contacts.erase"),
        merged_into=merged_into, ltv=ltv_json(list(contact.ltv)), rfm=rfm_json(contact), segment_rule=segment_rule,
        timeline=timeline,
        ltv_chart=line_chart(timeline.labels, timeline.series, title="Net lifetime value over time"),
        orders=orders, orders_total=orders_total, platforms=insights.events_by_platform(ids),
        onsite_events=contact_onsite_events(contact.id),
        events=insights.latest_events(ids))


@bp.post("/<int:contact_id>/erase")
def erase(contact_id: int):  # noqa: ANN201
    """Erase the contact everywhere once the user typed its email exactly (admins only, see security.roles)."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    typed = request.form.get("confirm_email", "").strip().lower()
    if not contact.email or typed != contact.email:
        flash("Type the contact's email address exactly to erase it.", "error")
        return redirect(url_for("contacts.show", contact_id=contact_id))
    record = erasure.start_erasure(contact.email, requested_by="dashboard")
    flash(f"Erasure {record.id} started: personal data is being removed here and every destination is "
          "asked to delete the person.", "success")
    return redirect(url_for("contacts.show", contact_id=contact_id, erasure=record.id))


@bp.get("/erasures/<erasure_id>")
def erasure_status(erasure_id: str):  # noqa: ANN201
    """The erasure's progress fragment; it polls itself while the erasure runs."""
    record = erasure.get_erasure(erasure_id)
    if record is None:
        abort(404)
    return render_template("contacts/_erasure.html", erasure=record,
                           destinations=erasure.destination_states(record))


@bp.post("/erasures/<erasure_id>/retry")
def retry_erasure(erasure_id: str):  # noqa: ANN201
    """Finish a failed erasure from where it stopped (admins only, see security.roles); htmx gets the fragment."""
    notice = error = None
    try:
        record = erasure_recovery.retry_erasure(erasure_id)
        notice = f"Erasure {record.id} retried: it goes on from the {record.phase} phase where it stopped."
    except LookupError:
        abort(404)
    except erasure_recovery.NotRetryable as exc:
        error = str(exc)
    record = erasure.get_erasure(erasure_id)
    if not is_htmx():
        flash(error or notice, "error" if error else "success")
        if record is not None and record.contact_ids:
            return redirect(url_for("contacts.show", contact_id=record.contact_ids[0], erasure=erasure_id))
        return redirect(url_for("contacts.index"))
    return render_template("contacts/_erasure.html", erasure=record, destinations=erasure.destination_states(record),
                           notice=notice, retry_error=error)
