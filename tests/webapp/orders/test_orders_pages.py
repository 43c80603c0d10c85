"""Orders dashboard: list (search, filters, sorts, keyset pages), order page, retry and replay."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from webapp.models import Event, Order
from webapp.services.orders.queries import SORTS, OrderFilters, list_orders

pytestmark = both_databases

HTMX = {"HX-Request": "true"}


class FlakyHook:
    """A webhook receiver that answers 500 to the first `failures` POSTs and 200 afterwards."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.bodies: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                failing = len(hook.bodies) <= hook.failures
                body = b'{"error":"receiver exploded"}' if failing else b'{"ok":true}'
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> FlakyHook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def hook() -> Iterator[FlakyHook]:
    with FlakyHook() as server:
        yield server


def webhook_destination(api, url: str, name: str = "Webhook") -> int:  # noqa: ANN001
    """A webhook destination that only receives order events (so the first POST is about the order)."""
    response = api.post("/api/v1/destinations", json={
        "name": name, "kind": "webhook", "events": ["placed_order", "ordered_product"],
        "credentials": {"url": url, "secret": "whsec-test-secret-1"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def post_orders(api, orders: list[dict]) -> None:  # noqa: ANN001
    response = api.post("/api/v1/orders", json={"orders": orders})
    assert response.status_code == 202, response.get_json()


def _order(number: int, **overrides) -> dict:  # noqa: ANN003
    day = 1 + number % 28
    values = {"id": f"A{number:03d}", "placed_at": f"2026-10-{day:02d}T10:00:00Z", "total": 10 + number,
              "customer": {"email": f"buyer{number % 3}@example.com", "first_name": "B"}}
    return make_order(**(values | overrides))


def _ids(html: str) -> list[str]:
    return re.findall(r'class="mono">#([^<]+)</a>', html)


def test_empty_list_explains_how_to_send_orders(logged_in):
    html = logged_in.get("/orders/").get_data(as_text=True)
    assert "POST /api/v1/orders" in html and "curl -X POST" in html
    assert 'href="/settings/"' in html


def test_list_page_and_rows_partial(logged_in, api):
    post_orders(api, [_order(1), _order(2, status="fulfilled", fulfilled_at="2026-10-05T00:00:00Z")])
    page = logged_in.get("/orders/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert _ids(html) == ["A002", "A001"]  # newest first
    assert "buyer1@example.com" in html and "12.00 USD" in html and "badge-fulfilled" in html
    partial = logged_in.get("/orders/?status=fulfilled", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="order-rows"' in partial
    assert _ids(partial) == ["A002"]


def test_search_by_exact_id_or_email_prefix_and_status(logged_in, api):
    post_orders(api, [_order(n) for n in range(1, 7)]
                + [_order(7, status="cancelled", cancelled_at="2026-10-09T00:00:00Z")])
    assert _ids(logged_in.get("/orders/?q=A004").get_data(as_text=True)) == ["A004"]
    assert _ids(logged_in.get("/orders/?q=A00").get_data(as_text=True)) == []  # ids match exactly only
    by_email = _ids(logged_in.get("/orders/?q=BUYER2@").get_data(as_text=True))
    assert sorted(by_email) == ["A002", "A005"]
    assert _ids(logged_in.get("/orders/?status=cancelled").get_data(as_text=True)) == ["A007"]
    assert _ids(logged_in.get("/orders/?q=100%25").get_data(as_text=True)) == []  # LIKE wildcards are literal
    empty = logged_in.get("/orders/?q=nobody@").get_data(as_text=True)
    assert "No orders match" in empty


def test_next_and_previous_pages_have_no_gaps_or_duplicates(logged_in, api):
    # 60 orders, many sharing a placed_at: the id breaks ties so no row is skipped or repeated.
    post_orders(api, [_order(n, placed_at=f"2026-10-{1 + n % 5:02d}T10:00:00Z") for n in range(60)])
    first = logged_in.get("/orders/").get_data(as_text=True)
    page_one = _ids(first)
    assert len(page_one) == 50 and "rel=\"prev\"" not in first
    after = re.search(r'rel="next" href="/orders/\?after=(\d+)"', first).group(1)
    second = logged_in.get(f"/orders/?after={after}").get_data(as_text=True)
    page_two = _ids(second)
    assert len(page_two) == 10 and 'rel="next"' not in second
    assert sorted(page_one + page_two) == sorted(f"A{n:03d}" for n in range(60))
    before = re.search(r'rel="prev" href="/orders/\?before=(\d+)"', second).group(1)
    assert _ids(logged_in.get(f"/orders/?before={before}").get_data(as_text=True)) == page_one


@pytest.mark.parametrize("sort", list(SORTS))
def test_keyset_walk_matches_full_sort_both_ways(api, sort):
    post_orders(api, [_order(n, total=10 + n % 4, placed_at=f"2026-10-{1 + n % 3:02d}T10:00:00Z")
                      for n in range(30)])
    filters = OrderFilters(sort=sort)
    expected = [row[0].id for row in list_orders(filters, limit=100).rows]
    seen, page = [], list_orders(filters, limit=7)
    while True:
        seen += [row[0].id for row in page.rows]
        if not page.has_next:
            break
        page = list_orders(filters, after=page.last_id, limit=7)
    assert seen == expected and len(seen) == 30
    backwards, page = [], list_orders(filters, before=expected[-1], limit=7)
    while True:
        backwards = [row[0].id for row in page.rows] + backwards
        if not page.has_prev:
            break
        page = list_orders(filters, before=page.first_id, limit=7)
    assert backwards == expected[:-1]


def _set_states(db, external_id: str, destination_id: int, *states: str) -> None:  # noqa: ANN001
    order = db.session.scalar(sa.select(Order).where(Order.external_id == external_id))
    events = db.session.scalars(sa.select(Event).where(Event.order_id == order.id,
                                                       Event.destination_id == destination_id)
                                .order_by(Event.id)).all()
    for event, state in zip(events, states * len(events), strict=False):
        event.state = state
    db.session.commit()


def test_delivery_filter_per_destination(logged_in, api, db):
    first = webhook_destination(api, "http://127.0.0.1:9/a", "First")
    second = webhook_destination(api, "http://127.0.0.1:9/b", "Second")
    post_orders(api, [_order(n) for n in range(1, 6)])
    _set_states(db, "A001", first, "delivered", "skipped")
    _set_states(db, "A002", first, "delivered", "retrying")
    _set_states(db, "A003", first, "dead", "delivered")
    _set_states(db, "A004", first, "in_flight", "delivered")
    _set_states(db, "A005", first, "rejected", "delivered")
    _set_states(db, "A001", second, "dead")
    _set_states(db, "A002", second, "delivered")

    def ids(query: str) -> list[str]:
        return sorted(_ids(logged_in.get(f"/orders/?{query}").get_data(as_text=True)))

    assert ids(f"destination={first}&delivery=delivered") == ["A001"]
    assert ids(f"destination={first}&delivery=failing") == ["A002", "A005"]
    assert ids(f"destination={first}&delivery=dead") == ["A003"]
    assert ids(f"destination={first}&delivery=pending") == ["A004"]
    assert ids(f"destination={second}&delivery=delivered") == ["A002"]
    assert ids(f"destination={second}&delivery=dead") == ["A001"]
    assert ids(f"destination={second}") == [f"A00{n}" for n in range(1, 6)]


def _order_events(db, external_id: str = "1234") -> list[Event]:  # noqa: ANN001
    order = db.session.scalar(sa.select(Order).where(Order.external_id == external_id))
    db.session.expire_all()
    return db.session.scalars(sa.select(Event).where(Event.order_id == order.id).order_by(Event.id)).all()


def test_order_page_shows_history_lines_attempts_and_answers(logged_in, api, db, worker, hook):
    webhook_destination(api, hook.url)
    post_orders(api, [make_order()])
    api.post("/api/v1/orders", json=make_order(status="placed", cancelled_at=None))  # same state: no move
    worker()
    failed = [e for e in _order_events(db) if e.state == "retrying"]
    assert len(failed) == 1 and len(hook.bodies) == 3
    response = logged_in.get("/orders/1234")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Status history" in html and "Winnie the Pooh" in html and "Boston" in html
    assert "Webhook" in html and "HTTP 500" in html
    assert "{&#34;error&#34;:&#34;receiver exploded&#34;}" in html  # the platform's answer, escaped
    assert "Request sent (secrets redacted)" in html and "POST [REDACTED]" in html
    assert "&#34;event&#34;: &#34;placed_order&#34;" in html  # the request body, pretty-printed
    assert hook.url not in html and "whsec-test-secret-1" not in html
    assert f'id="event-{failed[0].id}"' in html and "Retry now" in html and "next retry" in html
    assert "The order as received (JSON)" in html and "&#34;shipping_address&#34;" in html
    assert 'hx-trigger="every 3s"' in html  # still waiting: polls


def test_deliveries_partial_stops_polling_when_nothing_waits(logged_in, api, db):
    destination = webhook_destination(api, "http://127.0.0.1:9/x")
    post_orders(api, [make_order()])
    partial = logged_in.get("/orders/1234", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="deliveries"' in partial and "every 3s" in partial
    _set_states(db, "1234", destination, "delivered")
    partial = logged_in.get("/orders/1234", headers=HTMX).get_data(as_text=True)
    assert 'hx-trigger="deliveries-changed from:body"' in partial and "every 3s" not in partial
    assert logged_in.get("/orders/nope").status_code == 404


def test_order_page_highlights_refused_status_moves(logged_in, api):
    api.post("/api/v1/orders", json=make_order(status="refunded", refunded_at="2026-11-22T09:00:00Z"))
    api.post("/api/v1/orders", json=make_order(status="placed"))
    html = logged_in.get("/orders/1234").get_data(as_text=True)
    assert "Status moves that were refused" in html and "not allowed" in html
    assert "No events for this order" in html


def test_retry_moves_a_dead_event_to_retrying(logged_in, api, db):
    destination = webhook_destination(api, "http://127.0.0.1:9/x")
    post_orders(api, [make_order()])
    _set_states(db, "1234", destination, "dead", "delivered", "delivered")
    event = _order_events(db)[0]
    event.attempts, event.last_error = 8, "HTTP 500: gave up"
    db.session.commit()
    token = csrf_token(logged_in, "/orders/1234")
    response = logged_in.post(f"/orders/events/{event.id}/retry", headers=HTMX | {"X-CSRFToken": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert response.headers["HX-Trigger"] == "deliveries-changed"
    assert f'id="event-{event.id}"' in html and "badge-retrying" in html and "Retry scheduled" in html
    assert "due now" in html
    assert _order_events(db)[0].state == "retrying"
    assert db.session.scalar(sa.select(Order.delivery_state)) == "failing"


def test_retry_without_htmx_redirects_and_refuses_delivered_events(logged_in, api, db):
    destination = webhook_destination(api, "http://127.0.0.1:9/x")
    post_orders(api, [make_order()])
    _set_states(db, "1234", destination, "delivered")
    event = _order_events(db)[0]
    token = csrf_token(logged_in, "/orders/1234")
    response = logged_in.post(f"/orders/events/{event.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/orders/1234#event-{event.id}")
    assert "only failed or waiting events can be retried" in logged_in.get("/orders/1234").get_data(as_text=True)
    assert _order_events(db)[0].state == "delivered"
    assert logged_in.post("/orders/events/999/retry", data={"csrf_token": token}).status_code == 404


def test_replay_with_same_ids_then_with_new_ids_behind_a_second_box(logged_in, api, db):
    destination = webhook_destination(api, "http://127.0.0.1:9/x")
    post_orders(api, [make_order()])
    _set_states(db, "1234", destination, "delivered")
    before = _order_events(db)
    for event in before:
        event.attempts = 1
    db.session.commit()
    order_id = before[0].order_id
    headers = HTMX | {"X-CSRFToken": csrf_token(logged_in, "/orders/1234")}

    same = logged_in.post(f"/orders/{order_id}/replay", headers=headers, data={"destination_id": destination})
    assert "Replaying 3 events to Webhook with the same unique ids" in same.get_data(as_text=True)
    assert [e.state for e in _order_events(db)] == ["retrying"] * 3

    refused = logged_in.post(f"/orders/{order_id}/replay", headers=headers,
                             data={"destination_id": destination, "new_unique_ids": "1"})
    assert "Tick the second box" in refused.get_data(as_text=True)
    assert len(_order_events(db)) == 3

    counted = logged_in.post(f"/orders/{order_id}/replay", headers=headers, data={
        "destination_id": destination, "new_unique_ids": "1", "confirm_count_again": "1"})
    html = counted.get_data(as_text=True)
    assert "<html" not in html and 'id="deliveries"' in html and "counted again" in html
    new = [e for e in _order_events(db) if ":replay-1" in e.unique_id]
    assert sorted(e.unique_id for e in new) == sorted(f"{e.unique_id}:replay-1" for e in before)
    assert all(e.state == "pending" for e in new)


def test_replay_page_form_asks_for_confirmation(logged_in, api):
    webhook_destination(api, "http://127.0.0.1:9/x")
    post_orders(api, [make_order()])
    html = logged_in.get("/orders/1234").get_data(as_text=True)
    assert "hx-confirm=\"Send this order's 3 events to Webhook again?\"" in html
    assert 'name="confirm_count_again"' in html
