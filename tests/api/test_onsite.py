"""The onsite collector: script, CORS and allowed origins, validation, signed identities, bots, caps per
address and per visitor (behind trusted proxies too), and every refusal a 4xx in the error shape."""

import json

import pytest
import sqlalchemy as sa

from webapp.models import Event
from webapp.services.onsite.signing import sign

ANON = "anon-1234567890"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _collect(client, origin="https://shop.example", headers=None, **body):
    return client.post("/t/collect", data=json.dumps({"anonymous_id": ANON} | body), content_type="text/plain",
                       headers={"Origin": origin, "User-Agent": BROWSER, **(headers or {})})


def _hook(api):
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})


def _refused(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    errors = response.get_json()["errors"]
    assert errors and set(errors[0]) == {"path", "message"}


def test_script_is_served_with_cors(client):
    response = client.get("/t.js")
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    assert b"/t/collect" in response.data and b"data-consent" in response.data
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response.close()


def test_identified_browser_events_reach_the_outbox(api, client, db):
    _hook(api)
    assert _collect(client, event="active_on_site").get_json() == {"result": "ignored: visitor not identified"}
    assert _collect(client, event="identify", email="Ann@Example.com").get_json() == {"result": "identified"}
    response = _collect(client, event="viewed_product", url="https://shop.example/p/1",
                        properties={"product": {"product_id": "1", "name": "Mug", "price": 9.5,
                                                "url": "javascript:alert(1)", "image_url": "https://i.example/1.png"}})
    assert response.status_code == 202 and response.get_json() == {"result": "recorded"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    event = db.session.scalars(sa.select(Event)).one()
    assert event.name == "viewed_product"
    assert event.payload["contact"]["email"] == "ann@example.com"
    product = event.payload["activity"]["product"]
    assert product["name"] == "Mug" and product["url"] is None and product["image_url"] == "https://i.example/1.png"


def test_signed_identities(api, client, db, app):
    _hook(api)
    secret = app.config["ONSITE_SECRET"]
    assert len(secret) == 64  # generated into the instance folder
    good = sign("Ann@Example.com ", secret)
    assert good == sign("ann@example.com", secret)
    wrong = _collect(client, event="identify", email="ann@example.com", signature="0" * 64)
    _refused(wrong, 403)
    assert wrong.get_json()["errors"][0]["path"] == "signature"
    app.config["ONSITE_REQUIRE_SIGNED"] = True
    assert _collect(client, event="identify", email="eve@example.com").get_json() == {
        "result": "ignored: identity not signed"}
    assert _collect(client, event="viewed_product", email="eve@example.com").get_json() == {
        "result": "ignored: visitor not identified"}
    assert _collect(client, event="identify", email="ann@example.com", signature=good).get_json() == {
        "result": "identified"}
    assert _collect(client, event="viewed_product").get_json() == {"result": "recorded"}
    assert [e.payload["contact"]["email"] for e in db.session.scalars(sa.select(Event))] == ["ann@example.com"]


def test_klaviyo_kx_only_goes_to_klaviyo(api, client, db):
    _hook(api)
    api.post("/api/v1/destinations", json={"name": "k", "kind": "klaviyo", "credentials": {"api_key": "pk_x"},
                                            "base_url": "http://127.0.0.1:9/klaviyo"})
    assert _collect(client, event="viewed_product", kx="abc_DEF-123=").get_json() == {"result": "recorded"}
    events = db.session.scalars(sa.select(Event)).all()
    assert len(events) == 1 and events[0].payload["contact"]["_kx"] == "abc_DEF-123="


def test_bad_input_is_rejected_clearly(client):
    _refused(_collect(client, event="hack"), 422)
    _refused(client.post("/t/collect", data="{nope", content_type="text/plain",
                         headers={"User-Agent": BROWSER}), 400)
    _refused(_collect(client, event="viewed_product", properties={"x": "y" * 20000}), 413)
    _refused(_collect(client, event="added_to_cart", properties={"cart": {"items": [{}] * 101}}), 422)
    assert client.options("/t/collect").status_code == 204


@pytest.mark.parametrize("agent", ["", "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0",
                                   "python-requests/2.32", "Mozilla/5.0 HeadlessChrome/131.0"])
def test_bots_are_refused(client, agent):
    _refused(_collect(client, event="active_on_site", headers={"User-Agent": agent}), 403)


def test_allowed_origins(client, app):
    app.config["ONSITE_ORIGINS"] = ("https://shop.example",)
    ok = _collect(client, event="active_on_site")
    assert ok.status_code == 202 and ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    forged = _collect(client, event="active_on_site", origin="https://evil.example")
    _refused(forged, 403)
    assert "Access-Control-Allow-Origin" not in forged.headers
    _refused(client.post("/t/collect", data="{}", headers={"User-Agent": BROWSER}), 403)  # no Origin: a script
    _refused(client.options("/t/collect", headers={"Origin": "null"}), 403)
    assert client.options("/t/collect", headers={"Origin": "https://SHOP.example"}).status_code == 204


def test_rate_limit_per_address(client, app):
    app.config["ONSITE_IP_PER_MINUTE"] = 3
    codes = [_collect(client, event="active_on_site", anonymous_id=f"visitor-{n:06d}").status_code for n in range(5)]
    assert codes == [202, 202, 202, 429, 429]


def test_rate_limit_per_visitor(client, app):
    app.config["ONSITE_VISITOR_PER_MINUTE"] = 2
    codes = [_collect(client, event="active_on_site").status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert _collect(client, event="active_on_site", anonymous_id="someone-else-1").status_code == 202


def test_a_flood_across_the_minutes_turn_does_not_get_a_second_budget(client, app, monkeypatch):
    from datetime import UTC, datetime

    from webapp.services.onsite import guard

    app.config["ONSITE_IP_PER_MINUTE"] = 4
    clock = iter([datetime(2026, 12, 6, 12, 0, 59, 500000, tzinfo=UTC)] * 4
                 + [datetime(2026, 12, 6, 12, 1, 0, 500000, tzinfo=UTC)] * 4
                 + [datetime(2026, 12, 6, 12, 3, 0, 500000, tzinfo=UTC)])
    monkeypatch.setattr(guard, "utcnow", lambda: next(clock))
    codes = [_collect(client, event="active_on_site", anonymous_id=f"visitor-{n:06d}").status_code for n in range(9)]
    # a second later the last sixty seconds still hold the four; once a whole minute passes quietly the window is clear again
    assert codes == [202] * 4 + [429] * 4 + [202]


def test_behind_a_proxy_each_shopper_has_their_own_budget(tmp_path, redis, caplog):
    from tests.conftest import REDIS_URL
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Base

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"), "SECRET_KEY": "x",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "REDIS_URL": REDIS_URL,
                      "TRUSTED_PROXIES": 1, "ONSITE_IP_PER_MINUTE": 2})
    with app.app_context():
        Base.metadata.create_all(db.engine)
        client = app.test_client()
        caplog.set_level("INFO", logger="webapp.blueprints.onsite")
        codes = [_collect(client, event="active_on_site", anonymous_id=f"visitor-{n:06d}",
                          headers={"X-Forwarded-For": f"203.0.113.{n % 2 + 1}"}).status_code for n in range(6)]
        db.session.remove()
        db.engine.dispose()
    assert codes == [202, 202, 202, 202, 429, 429]
    refused = [record.getMessage() for record in caplog.records if record.name == "webapp.blueprints.onsite"]
    assert refused and all("from 203.0.113." in line for line in refused), refused  # the shopper, not the proxy


def test_flood_of_junk_is_only_ever_4xx(client, app):
    app.config["ONSITE_IP_PER_MINUTE"] = 50
    bodies = ["", "null", "[]", "{}", '{"event": "identify"}', '{"event":"identify","anonymous_id":"x"}',
              json.dumps({"event": "identify", "anonymous_id": ANON, "email": "not-an-email"}),
              json.dumps({"event": "viewed_product", "anonymous_id": ANON, "properties": []}),
              json.dumps({"event": "viewed_product", "anonymous_id": ANON, "url": 5}),
              "\x00\xff" * 50, "{" * 5000]
    codes = [client.post("/t/collect", data=body, content_type="text/plain",
                         headers={"Origin": "https://x.example", "User-Agent": BROWSER}).status_code
             for body in bodies * 6]
    assert all(400 <= code < 500 for code in codes), codes
    assert 429 in codes


def test_a_page_sends_its_events_as_one_batch(api, client, db, app):
    _hook(api)
    secret = app.config["ONSITE_SECRET"]
    event = {"anonymous_id": ANON, "email": "ann@example.com", "signature": sign("ann@example.com", secret)}
    batch = {"events": [event | {"event": "identify"}, event | {"event": "active_on_site"},
                        event | {"event": "viewed_product", "properties": {"product": {"name": "Mug"}}}]}
    response = client.post("/t/collect", data=json.dumps(batch), content_type="text/plain",
                           headers={"Origin": "https://shop.example", "User-Agent": BROWSER})
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"results": ["identified", "recorded", "recorded"]}
    assert sorted(e.name for e in db.session.scalars(sa.select(Event))) == ["active_on_site", "viewed_product"]


@pytest.mark.parametrize(("events", "path"), [
    ([{"event": "active_on_site", "anonymous_id": ANON}, {"event": "active_on_site", "anonymous_id": "other-browser"}],
     "events"),
    ([{"event": "back_in_stock", "anonymous_id": ANON, "properties": {"sku": "X"}}], "events"),
    ([{"event": "active_on_site", "anonymous_id": ANON}] * 21, "events"),
    ([{"event": "active_on_site", "anonymous_id": ANON}, {"event": "nope", "anonymous_id": ANON}], "events.1.event"),
    ([], "events"),
])
def test_bad_batches_name_the_problem(client, events, path):
    response = client.post("/t/collect", data=json.dumps({"events": events}), content_type="text/plain",
                           headers={"User-Agent": BROWSER})
    _refused(response, 422)
    assert response.get_json()["errors"][0]["path"] == path


def test_a_batch_counts_each_event_against_the_budget(client, app):
    app.config["ONSITE_VISITOR_PER_MINUTE"] = 5
    batch = json.dumps({"events": [{"event": "active_on_site", "anonymous_id": ANON}] * 3})
    codes = [client.post("/t/collect", data=batch, content_type="text/plain",
                         headers={"User-Agent": BROWSER}).status_code for _ in range(2)]
    assert codes == [202, 429]
