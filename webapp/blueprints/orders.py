"""Dashboard: orders list, one order's page, and the delivery actions on it (retry, replay)."""

from __future__ import annotations

import orjson
from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.blueprints.common import dashboard_blueprint, is_htmx, render_page_or_partial
from webapp.extensions import db
from webapp.models import Destination, Order
from webapp.services.delivery import retries as delivery_ops
from webapp.services.delivery.timelines import (
    anomalies,
    event_view,
    find_order,
    order_deliveries,
    status_steps,
)
from webapp.services.orders.queries import (
    DELIVERY_STATES,
    SORTS,
    STATUSES,
    OrderFilters,
    any_orders,
    destination_choices,
    list_orders,
)

bp = dashboard_blueprint("orders", __name__, url_prefix="/orders")


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


@bp.get("/")
def index():  # noqa: ANN201
    filters = OrderFilters.from_args(request.args)
    results = list_orders(filters, after=_int_arg("after"), before=_int_arg("before"))
    return render_page_or_partial(
        "orders/index.html", "orders/_rows.html", results=results, filters=filters, sorts=SORTS,
        statuses=STATUSES, delivery_states=DELIVERY_STATES, destinations=destination_choices(),
        has_orders=bool(results.rows) or any_orders())


def _deliveries_context(order: Order, notice: str | None = None, error: str | None = None, *,
                        fragment: bool = True) -> dict:
    """`fragment`: the section is swapped in by htmx, so it also updates the page header's delivery badge
    (out of band), which would otherwise keep saying "failing" after a retry went through."""
    return {"order": order, "deliveries": order_deliveries(order), "notice": notice, "error": error,
            "fragment": fragment}


@bp.get("/<path:external_id>")
def show(external_id: str):  # noqa: ANN201
    """The full page; an htmx request (the section polling itself) gets the deliveries section alone."""
    order = find_order(external_id)
    if order is None:
        abort(404)
    if is_htmx():
        return render_template("orders/_deliveries.html", **_deliveries_context(order))
    raw = orjson.dumps(order.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return render_template("orders/show.html", steps=status_steps(order), anomalies=anomalies(order),
                           raw_json=raw, **_deliveries_context(order, fragment=False))


@bp.post("/events/<int:event_id>/retry")
def retry(event_id: int):  # noqa: ANN201
    view = event_view(event_id)
    if view is None or view.event.order_id is None:
        abort(404)
    notice = error = None
    try:
        delivery_ops.retry_event(view.event)
        notice = "Retry scheduled: the worker sends it now."
    except ValueError as exc:
        error = str(exc)
    order = db.session.get(Order, view.event.order_id)
    if not is_htmx():
        flash(error or notice, "error" if error else "success")
        return redirect(url_for("orders.show", external_id=order.external_id) + f"#event-{event_id}")
    response = Response(render_template("orders/_event.html", view=event_view(event_id), order=order,
                                        notice=notice, error=error))
    # A section that was not polling (nothing waited) reloads and starts polling; one that was keeps going.
    response.headers["HX-Trigger"] = "deliveries-changed"
    return response


@bp.post("/<int:order_id>/replay")
def replay(order_id: int):  # noqa: ANN201
    order = db.session.get(Order, order_id)
    destination_id = request.form.get("destination_id", "")
    destination = db.session.get(Destination, int(destination_id)) if destination_id.isdigit() else None
    if order is None or destination is None:
        abort(404)
    new_ids = request.form.get("new_unique_ids") == "1"
    notice = error = None
    if new_ids and request.form.get("confirm_count_again") != "1":
        error = ("New unique ids make the platform count this order again. Tick the second box to "
                 "confirm that is what you want.")
    else:
        try:
            count = delivery_ops.replay_order(order, destination.id, new_unique_ids=new_ids)
            how = "with new unique ids (counted again)" if new_ids else "with the same unique ids"
            notice = f"Replaying {count} event{'s' if count != 1 else ''} to {destination.name} {how}."
        except ValueError as exc:
            error = str(exc)
    if not is_htmx():
        flash(error or notice, "error" if error else "success")
        return redirect(url_for("orders.show", external_id=order.external_id))
    return render_template("orders/_deliveries.html", **_deliveries_context(order, notice, error))
