"""The dashboard side of onsite tracking: a contact's onsite events (the partial the contact page includes),
onsite events per day on the overview, the Onsite page for admins and viewers, the settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import g, render_template

from tests.factories import make_order
from webapp.models import Contact
from webapp.services.onsite.activity import contact_onsite_events
from webapp.services.onsite.settings import load_onsite_settings
from webapp.services.onsite.snippets import first_party_snippet
from webapp.services.overview.onsite_by_day import onsite_chart
from webapp.settings import SettingsError

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _browse(client, event: str, **body) -> None:  # noqa: ANN001
    response = client.post("/t/collect", content_type="text/plain", headers={"User-Agent": BROWSER},
                           data=json.dumps({"event": event, "anonymous_id": "browser-000001"} | body))
    assert response.status_code == 202, response.get_json()


@pytest.fixture()
def browsed(api, client, db):  # noqa: ANN001, ANN201
    """Two destinations (each event is written twice), a contact from an order, and its browsing."""
    for name in ("one", "two"):
        api.post("/api/v1/destinations", json={"name": name, "kind": "webhook", "credentials": {
            "url": f"http://127.0.0.1:9/{name}", "secret": "abcdefgh"}})
    assert api.post("/api/v1/orders", json=make_order()).status_code == 202
    contact = db.session.query(Contact).one()
    _browse(client, "identify", email=contact.email)
    _browse(client, "active_on_site")
    _browse(client, "viewed_product", properties={"product": {"name": "Mug", "price": 9.5,
                                                              "url": "https://shop.example/p/mug"}})
    _browse(client, "added_to_cart", properties={"product": {"name": "Mug"}, "cart": {"total": 19}})
    return contact


def test_a_contacts_onsite_events(app, browsed) -> None:  # noqa: ANN001
    events = contact_onsite_events(browsed.id)
    assert [(e.label, e.product, e.value, e.destinations) for e in events] == [
        ("Added to Cart", "Mug", 19, 2), ("Viewed Product", "Mug", 9.5, 2), ("Active on Site", None, None, 2)]
    with app.test_request_context("/contacts/1"):
        html = render_template("contacts/_onsite.html", onsite_events=events)
    assert 'href="https://shop.example/p/mug"' in html and "Added to Cart" in html
    with app.test_request_context("/contacts/1"):
        assert "No onsite activity" in render_template("contacts/_onsite.html", onsite_events=[])


def test_onsite_events_per_day_on_the_overview(logged_in, browsed) -> None:  # noqa: ANN001
    chart = onsite_chart()
    assert chart["onsite_total"] == 3 and chart["onsite_days"]["Viewed Product"][-1] == 1
    page = logged_in.get("/").get_data(as_text=True)
    assert 'hx-get="/onsite/by-day"' in page
    fragment = logged_in.get("/onsite/by-day").get_data(as_text=True)
    assert "<svg" in fragment and "Onsite events by day" in fragment


def test_the_onsite_page_shows_the_secret_to_admins_only(app, logged_in, client) -> None:  # noqa: ANN001
    page = logged_in.get("/onsite/").get_data(as_text=True)
    assert app.config["ONSITE_SECRET"] in page and "hash_hmac" in page
    assert "http://localhost/t.js" in page and 'data-consent="required"' in page
    from webapp.security import create_user

    create_user("viewer@example.com", "viewer-password", role="viewer")
    viewer = app.test_client()
    _fresh_g()
    token = re.search(r'name="csrf_token" value="([^"]+)"', viewer.get("/login").get_data(as_text=True)).group(1)
    assert viewer.post("/login", data={"email": "viewer@example.com", "password": "viewer-password",
                                       "csrf_token": token}).status_code == 302
    _fresh_g()
    seen = viewer.get("/onsite/")
    assert seen.status_code == 200 and app.config["ONSITE_SECRET"] not in seen.get_data(as_text=True)
    _fresh_g()
    assert app.test_client().get("/onsite/").status_code == 302  # login first


def _fresh_g() -> None:
    """The test's app context is shared by its requests: forget the user and CSRF token they cached."""
    for key in ("_login_user", "csrf_token"):
        g.pop(key, None)


def test_settings() -> None:
    values = load_onsite_settings({"SHOPRELAY_ONSITE_ORIGINS": "https://Shop.example, https://www.shop.example:8443/",
                                   "SHOPRELAY_ONSITE_REQUIRE_SIGNED": "yes"})
    assert values["ONSITE_ORIGINS"] == ("https://shop.example", "https://www.shop.example:8443")
    assert values["ONSITE_REQUIRE_SIGNED"] is True and values["ONSITE_SECRET"] is None
    for bad in ({"SHOPRELAY_ONSITE_ORIGINS": "shop.example"}, {"SHOPRELAY_ONSITE_SECRET": "short"},
                {"SHOPRELAY_ONSITE_VISITOR_PER_MINUTE": "0"}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            load_onsite_settings(bad)


def test_the_secret_is_generated_once(app) -> None:  # noqa: ANN001
    path = Path(app.instance_path) / "onsite_secret"
    assert path.read_text() == app.config["ONSITE_SECRET"] and oct(path.stat().st_mode)[-3:] == "600"


def test_the_readme_shows_the_generated_snippet() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    if "shoprelay.q.push" not in readme:
        pytest.skip("the README's onsite section is not merged yet (/tmp/readme-D.md)")
    assert first_party_snippet("https://YOUR-SHOPRELAY") in readme
