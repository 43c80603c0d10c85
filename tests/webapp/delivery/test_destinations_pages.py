"""Destinations dashboard: list, create/edit form with validation, detail, test connection, retries, delete."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token
from tests.factories import make_order
from webapp.models import DeliveryRequest, Destination, Event
from webapp.services.platform.crypto import decrypt_json

SECRET = "whsec-very-secret-4711"
API_KEY = "pk_live_klaviyo_secret_0815"
HTMX = {"HX-Request": "true"}


class _Platform(BaseHTTPRequestHandler):
    """Answers 200 on /webhook/ok and /api/accounts with the right key, 401 otherwise."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        good = self.path.startswith("/webhook/ok") or (
            self.path.startswith("/api/accounts") and self.headers.get("Authorization") == f"Klaviyo-API-Key {API_KEY}")
        self.send_response(200 if good else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data": []}' if good else b'{"errors": [{"detail": "Invalid API key provided."}]}')

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def platform() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _webhook(api, url: str, name: str = "Store hook") -> int:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={
        "name": name, "kind": "webhook", "credentials": {"url": url, "secret": SECRET}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _post(client, path: str, data: dict | None = None, headers: dict | None = None):  # noqa: ANN001, ANN202
    token = csrf_token(client, "/destinations/")
    return client.post(path, data={"csrf_token": token, **(data or {})}, headers=headers or {})


def _webhook_form(url: str, **overrides: object) -> dict:
    form = {"kind": "webhook", "name": "My hook", "credentials.url": url, "credentials.secret": SECRET,
            "mode": "realtime", "batch_interval_minutes": "30", "enabled": "1",
            "rate_limits.burst_per_second": "20", "rate_limits.per_minute": "1200"}
    return form | overrides


def _error_next_to(html: str, field_name: str) -> str:
    """The error message rendered in the same form block as the input named `field_name`."""
    match = re.search(rf'name="{re.escape(field_name)}".*?<p class="field-error" role="alert">([^<]+)</p>',
                      html, re.S)
    assert match, f"no error shown after {field_name}"
    between = html[match.start():match.end()]
    assert between.count("<input") <= 1 or field_name == "events", f"error is not next to {field_name}"
    return match.group(1)


def test_empty_list_explains_destinations(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/destinations/").get_data(as_text=True)
    assert "No destinations yet" in html
    assert "A destination is a marketing platform account" in html
    assert 'href="/destinations/new"' in html and "Connect a platform" in html


def test_kind_chooser_then_form_per_kind(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/destinations/new").get_data(as_text=True)
    for kind, label in (("klaviyo", "Klaviyo"), ("sendlane", "Sendlane"), ("esputnik", "eSputnik"),
                        ("webhook", "Signed webhook")):
        assert f"/destinations/new?kind={kind}" in html and label in html
    html = logged_in.get("/destinations/new?kind=sendlane").get_data(as_text=True)
    assert 'type="password" id="cred-api_token" name="credentials.api_token" value=""' in html
    assert 'name="credentials.integration_token"' in html
    assert 'value="ordered_product"' not in html  # Sendlane does not take it
    assert 'value="placed_order"' in html
    assert 'name="rate_limits.per_minute" min="0" step="any" value="240"' in html
    html = logged_in.get("/destinations/new?kind=klaviyo").get_data(as_text=True)
    assert 'name="rate_limits.bulk_per_minute" min="0" step="any" value="150"' in html
    assert 'name="rate_limits.burst_per_second" min="0" step="any" value="350"' in html
    assert "https://a.klaviyo.com" in html


def test_create_webhook_through_the_form(logged_in, db, platform) -> None:  # noqa: ANN001
    response = _post(logged_in, "/destinations/new", _webhook_form(f"{platform}/webhook/ok", events=[
        "placed_order", "fulfilled_order"], mode="batch", batch_interval_minutes="15"))
    assert response.status_code == 302
    destination = db.session.scalar(sa.select(Destination))
    assert response.headers["Location"] == f"/destinations/{destination.id}"
    assert (destination.kind, destination.mode, destination.batch_interval_minutes) == ("webhook", "batch", 15)
    assert destination.events == ["placed_order", "fulfilled_order"]
    assert decrypt_json(destination.credentials_encrypted)["secret"] == SECRET
    html = logged_in.get("/destinations/").get_data(as_text=True)
    assert "My hook" in html and "Signed webhook" in html and "every 15 min" in html


def test_create_errors_are_shown_next_to_their_fields_and_input_is_kept(logged_in, db) -> None:  # noqa: ANN001
    response = _post(logged_in, "/destinations/new", _webhook_form(
        "ftp://example.com/hook", name="Kept name", **{"credentials.secret": "", "batch_interval_minutes": "0",
                                                      "rate_limits.per_minute": "-5",
                                                      "base_url": "example.com"}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Please fix the fields marked below" in html
    assert _error_next_to(html, "batch_interval_minutes") == "must be at least 1"
    assert _error_next_to(html, "rate_limits.per_minute").startswith("must be at least 0")
    assert "http:// or https://" in _error_next_to(html, "base_url")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Destination)) == 0
    assert 'value="Kept name"' in html and 'value="example.com"' in html and 'value="-5"' in html
    assert "ftp://example.com/hook" not in html  # credentials are never echoed back

    # Fields fixed, the service's own checks (credentials per kind) come next.
    response = _post(logged_in, "/destinations/new", _webhook_form("ftp://example.com/hook",
                                                                   **{"credentials.secret": ""}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "http:// or https://" in _error_next_to(html, "credentials.url")
    assert _error_next_to(html, "credentials.secret") == "required for Signed webhook"


def test_unknown_kind_is_refused(logged_in) -> None:  # noqa: ANN001
    assert _post(logged_in, "/destinations/new", {"kind": "mailchimp", "name": "x"}).status_code == 400
    assert "Connect a platform" in logged_in.get("/destinations/new?kind=mailchimp").get_data(as_text=True)


def test_edit_keeps_blank_credentials_and_shows_errors(logged_in, api, db) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/one")
    html = logged_in.get(f"/destinations/{destination_id}/edit").get_data(as_text=True)
    assert 'value="Store hook"' in html and "Leave blank to keep the saved value" in html
    assert SECRET not in html and "hooks.example/one" not in html

    form = {"name": "Renamed", "mode": "realtime", "batch_interval_minutes": "30", "enabled": "1",
            "events": ["placed_order"], "rate_limits.per_minute": "600", "rate_limits.burst_per_second": "5"}
    response = _post(logged_in, f"/destinations/{destination_id}/edit", form)
    assert response.status_code == 302
    destination = db.session.get(Destination, destination_id)
    assert destination.name == "Renamed" and destination.events == ["placed_order"]
    assert destination.rate_limits["per_minute"] == 600
    assert decrypt_json(destination.credentials_encrypted) == {"url": "https://hooks.example/one", "secret": SECRET}

    response = _post(logged_in, f"/destinations/{destination_id}/edit",
                     form | {"name": "", "credentials.secret": "new-secret-value", "events": ["bogus"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(html, "name") == "must not be empty"
    assert "unknown event" in _error_next_to(html, "events")
    assert "new-secret-value" not in html
    db.session.expire_all()
    assert db.session.get(Destination, destination_id).name == "Renamed"

    response = _post(logged_in, f"/destinations/{destination_id}/edit", form | {"credentials.secret": "rotated-1234"})
    assert response.status_code == 302
    db.session.expire_all()
    stored = decrypt_json(db.session.get(Destination, destination_id).credentials_encrypted)
    assert stored == {"url": "https://hooks.example/one", "secret": "rotated-1234"}


def test_edit_refuses_an_event_the_platform_does_not_take(logged_in, api) -> None:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={"name": "K", "kind": "klaviyo",
                                                      "credentials": {"api_key": API_KEY}})
    destination_id = response.get_json()["id"]
    response = _post(logged_in, f"/destinations/{destination_id}/edit",
                     {"name": "K", "mode": "realtime", "enabled": "1", "events": ["pending_order"]})
    assert response.status_code == 422
    assert "Klaviyo does not take: pending_order" in _error_next_to(response.get_data(as_text=True), "events")


def test_no_page_ever_shows_credentials(logged_in, api, platform) -> None:  # noqa: ANN001
    destination_id = _webhook(api, f"{platform}/webhook/ok")
    api.post("/api/v1/orders", json=make_order())
    pages = ["/destinations/", f"/destinations/{destination_id}", f"/destinations/{destination_id}/edit",
             f"/destinations/{destination_id}/requests", f"/destinations/{destination_id}/delete"]
    for path in pages:
        for headers in ({}, HTMX):
            response = logged_in.get(path, headers=headers)
            assert response.status_code == 200, path
            html = response.get_data(as_text=True)
            assert SECRET not in html and "/webhook/ok" not in html, path
    tested = _post(logged_in, f"/destinations/{destination_id}/test", headers=HTMX).get_data(as_text=True)
    assert SECRET not in tested and "Connection works" in tested


def test_detail_page_and_htmx_list(logged_in, api) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/x")
    api.post("/api/v1/orders", json=make_order())
    html = logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)
    assert "Store hook" in html and "Test connection" in html and "Retry failed events" in html
    assert "secret, url saved" in html
    assert re.search(r'<span class="value">5</span> <span class="badge badge-pending">', html)  # placed, 2 lines, profile, consent
    partial = logged_in.get("/destinations/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="destination-table"' in partial
    assert re.search(r'<td class="num">5</td>', partial)


def test_test_connection_shows_the_platforms_answer(logged_in, api, platform) -> None:  # noqa: ANN001
    good = _webhook(api, f"{platform}/webhook/ok", "Good")
    bad = _webhook(api, f"{platform}/webhook/denied", "Bad")
    html = _post(logged_in, f"/destinations/{good}/test", headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and "Connection works" in html and "HTTP 200" in html and " ms" in html
    html = _post(logged_in, f"/destinations/{bad}/test", headers=HTMX).get_data(as_text=True)
    assert "Connection failed" in html and "HTTP 401" in html and "Invalid API key provided." in html
    # Without htmx the answer comes inside the detail page.
    html = _post(logged_in, f"/destinations/{bad}/test").get_data(as_text=True)
    assert "<html" in html and "Connection failed" in html


def test_test_connection_never_reaches_an_address_the_url_guard_refuses(app, logged_in, api, platform) -> None:  # noqa: ANN001
    """A destination saved while its host was allowed, then the allow list narrowed: the test call is refused
    before any connection, like a delivery would be."""
    destination_id = _webhook(api, f"{platform}/webhook/ok", "Inward")
    app.config["ALLOW_PRIVATE_URLS"] = ""
    html = _post(logged_in, f"/destinations/{destination_id}/test", headers=HTMX).get_data(as_text=True)
    assert "Connection failed" in html and "not allowed" in html and "loopback" in html


def test_test_connection_for_klaviyo_uses_the_base_url_override(logged_in, api, platform) -> None:  # noqa: ANN001
    ids = [api.post("/api/v1/destinations", json={"name": name, "kind": "klaviyo", "base_url": platform,
                                                  "credentials": {"api_key": key}}).get_json()["id"]
           for name, key in (("right", API_KEY), ("wrong", "pk_wrong_key_1234"))]
    right = _post(logged_in, f"/destinations/{ids[0]}/test", headers=HTMX).get_data(as_text=True)
    assert "Connection works" in right and API_KEY not in right
    wrong = _post(logged_in, f"/destinations/{ids[1]}/test", headers=HTMX).get_data(as_text=True)
    assert "HTTP 401" in wrong and "pk_wrong_key_1234" not in wrong


def test_pause_shows_the_reason_and_resume_clears_it(logged_in, api, db) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/x")
    response = _post(logged_in, f"/destinations/{destination_id}/pause", {"reason": "Klaviyo maintenance"})
    assert response.status_code == 302
    html = logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)
    assert "paused-banner" in html and "Klaviyo maintenance" in html and ">Resume</button>" in html
    assert "Klaviyo maintenance" in logged_in.get("/destinations/").get_data(as_text=True)
    _post(logged_in, f"/destinations/{destination_id}/resume")
    destination = db.session.get(Destination, destination_id)
    db.session.refresh(destination)
    assert destination.paused_at is None and destination.pause_reason is None
    assert "paused-banner" not in logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)


def _fail_events(db, destination_id: int, states: list[str]) -> list[int]:  # noqa: ANN001
    events = db.session.scalars(sa.select(Event).where(Event.destination_id == destination_id)
                                .order_by(Event.id)).all()
    for event, state in zip(events, states, strict=False):
        event.state, event.attempts, event.last_error = state, 3, "HTTP 400: email is invalid"
    db.session.commit()
    return [event.id for event in events[:len(states)]]


def test_retry_failed_counts_then_confirms(logged_in, api, db) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/x")
    api.post("/api/v1/orders", json=make_order(id="A-1"))
    api.post("/api/v1/orders", json=make_order(id="A-2"))
    failed = _fail_events(db, destination_id, ["dead", "rejected", "dead"])
    path = f"/destinations/{destination_id}/retry-failed"

    html = _post(logged_in, path, {"since": "", "until": ""}, headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and "3 events will be retried." in html and 'name="confirm" value="1"' in html
    assert db.session.scalar(sa.select(sa.func.count()).where(Event.state == "retrying")) == 0  # only counted

    html = _post(logged_in, path, {"since": "2000-01-01T00:00", "until": "2000-01-02T00:00"},
                 headers=HTMX).get_data(as_text=True)
    assert "No failed events in this range" in html
    html = _post(logged_in, path, {"since": "yesterday"}, headers=HTMX).get_data(as_text=True)
    assert "is not a date and time" in html

    html = _post(logged_in, path, {"since": "2000-01-01T00:00", "until": "", "confirm": "1"},
                 headers=HTMX).get_data(as_text=True)
    assert "3 events scheduled for retry" in html
    db.session.expire_all()
    assert {db.session.get(Event, event_id).state for event_id in failed} == {"retrying"}


def test_retry_one_event_replaces_its_row(logged_in, api, db) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/x")
    api.post("/api/v1/orders", json=make_order())
    event_id, delivered_id = _fail_events(db, destination_id, ["dead", "delivered"])
    html = logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)
    assert f'id="event-{event_id}"' in html and "HTTP 400: email is invalid" in html and "Retry now" in html
    assert f'id="event-{delivered_id}"' not in html

    row = _post(logged_in, f"/destinations/events/{event_id}/retry", headers=HTMX).get_data(as_text=True)
    assert row.strip().startswith(f'<tr id="event-{event_id}">') and "Retry scheduled" in row
    assert "badge-retrying" in row and "<html" not in row
    row = _post(logged_in, f"/destinations/events/{delivered_id}/retry", headers=HTMX).get_data(as_text=True)
    assert "only failed or waiting events can be retried" in row
    response = _post(logged_in, f"/destinations/events/{event_id}/retry")
    assert response.status_code == 302 and response.headers["Location"] == f"/destinations/{destination_id}"


def test_request_log_shows_real_deliveries_and_pages(logged_in, api, db, worker, platform) -> None:  # noqa: ANN001
    destination_id = _webhook(api, f"{platform}/webhook/ok")
    api.post("/api/v1/orders", json=make_order())
    worker()
    html = logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)
    assert "badge-delivered" in html and '<td class="mono">200</td>' in html
    assert "Request body" in html and "placed_order" in html and SECRET not in html
    assert "No failed events" in html
    stored = db.session.scalars(sa.select(DeliveryRequest.request_body)).all()
    assert stored and not any("\n" in body for body in stored)  # stored compact; the page indents it
    assert '\n  &#34;event&#34;: &#34;placed_order&#34;' in html or '\n  "event": "placed_order"' in html

    for number in range(30):
        db.session.add(DeliveryRequest(destination_id=destination_id, url="https://x.example/hook",
                                       http_status=500, outcome="retry", response_body=f"boom-{number:02d}"))
    db.session.commit()
    html = logged_in.get(f"/destinations/{destination_id}").get_data(as_text=True)
    assert "boom-29" in html and "boom-05" in html and "boom-04" not in html  # 25 newest first
    older = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    partial = logged_in.get(older, headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="request-log"' in partial
    assert "boom-04" in partial and "boom-00" in partial and "boom-05" not in partial and "rel=\"prev\"" in partial
    assert "<html" in logged_in.get(older).get_data(as_text=True)


def test_delete_asks_first(logged_in, api, db) -> None:  # noqa: ANN001
    destination_id = _webhook(api, "https://hooks.example/x")
    api.post("/api/v1/orders", json=make_order())
    html = logged_in.get(f"/destinations/{destination_id}/delete").get_data(as_text=True)
    assert "Delete Store hook?" in html and "5 events not delivered yet will never be sent" in html
    response = _post(logged_in, f"/destinations/{destination_id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/destinations/"
    assert db.session.get(Destination, destination_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0
    assert logged_in.get(f"/destinations/{destination_id}").status_code == 404


def test_pages_need_a_login(client) -> None:  # noqa: ANN001
    assert client.get("/destinations/").status_code == 302
    assert client.get("/destinations/new?kind=webhook").status_code == 302
